package plugin

import (
	"errors"
	"strings"
	"testing"

	"github.com/kcp-dev/logicalcluster/v3"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	"k8s.io/client-go/tools/clientcmd"
)

func TestParseClusterURL(t *testing.T) {
	for _, tc := range []struct {
		server, base, path, wantErr string
	}{
		{server: "https://h:6443/clusters/root:acme", base: "https://h:6443", path: "root:acme"},
		{server: "https://h:6443/clusters/root:acme/", base: "https://h:6443", path: "root:acme"},
		{server: "https://h:6443/clusters/root:acme/api/v1", base: "https://h:6443", path: "root:acme"},
		{server: "https://h/proxy/clusters/root:a:b", base: "https://h/proxy", path: "root:a:b"},
		{server: "https://h/clusters/2x7k9q", base: "https://h", path: "2x7k9q"},
		{server: "https://h:6443", wantErr: "current cluster URL https://h:6443 is not pointing to a workspace"},
		{server: "https://h/clusters/", wantErr: `invalid cluster name: ""`},
		{server: "https://h/clusters/root:Acme", wantErr: `invalid cluster name: "root:Acme"`},
		{server: "https://h:bad port", wantErr: "parsing server URL"},
	} {
		base, p, err := parseClusterURL(tc.server)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseClusterURL(%q) = %v, %v; want error containing %q", tc.server, p, err, tc.wantErr)
			}
			continue
		}
		if err != nil || base.String() != tc.base || p.String() != tc.path {
			t.Errorf("parseClusterURL(%q) = %v, %v, %v; want %s, %s", tc.server, base, p, err, tc.base, tc.path)
		}
	}
}

func TestResolve(t *testing.T) {
	up := errors.New("cannot go up from root")
	for _, tc := range []struct {
		current, arg, want string
		wantErr            error
	}{
		{current: "root", arg: "acme", want: "root:acme"},
		{current: "root:acme", arg: "a:b", want: "root:acme:a:b"},
		{current: "root:acme:a", arg: ":root:other", want: "root:other"},
		{current: "root:acme", arg: ":system:admin", want: "system:admin"},
		{current: "root:acme", arg: "rooted", want: "root:acme:rooted"},
		{current: "root:acme:a", arg: "..", want: "root:acme"},
		{current: "root:acme:a", arg: "..:..:b", want: "root:b"},
		{current: "root:acme", arg: ".:a:.", want: "root:acme:a"},
		{current: "root", arg: "..", want: ""},
		{current: "root", arg: "..:..", wantErr: up},
	} {
		got, err := resolveDots(absolute(logicalcluster.NewPath(tc.current), tc.arg), up)
		if err != tc.wantErr || got.String() != tc.want {
			t.Errorf("resolving %q in %q = %q, %v; want %q, %v", tc.arg, tc.current, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseType(t *testing.T) {
	for _, tc := range []struct {
		flag string
		want *tenancyv1alpha1.WorkspaceTypeReference
		text string
	}{
		{flag: "", want: nil, text: ""},
		{flag: "Universal", want: &tenancyv1alpha1.WorkspaceTypeReference{Name: "universal"}, text: "universal"},
		{flag: "root:team", want: &tenancyv1alpha1.WorkspaceTypeReference{Path: "root", Name: "team"}, text: "root:team"},
		{flag: "root:Acme:Team", want: &tenancyv1alpha1.WorkspaceTypeReference{Path: "root:Acme", Name: "team"}, text: "root:Acme:team"},
	} {
		got := parseType(tc.flag)
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want || typeString(got) != tc.text {
			t.Errorf("parseType(%q) = %+v (%q); want %+v (%q)", tc.flag, got, typeString(got), tc.want, tc.text)
		}
	}
}

func TestWorkspaceFlag(t *testing.T) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = writeKubeconfig(t, testKubeconfig)
	base := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	for _, tc := range []struct{ flag, want, wantErr string }{
		{flag: "a", want: "https://kcp.example:6443/clusters/root:acme:a"},
		{flag: "..", want: "https://kcp.example:6443/clusters/root"},
		{flag: ":root:x", want: "https://kcp.example:6443/clusters/root:x"},
		{flag: "..:..:..", wantErr: "cannot go above the root workspace"},
		{flag: "A", wantErr: "invalid workspace path: A"},
	} {
		config, err := (&workspaceOverride{delegate: base, workspace: tc.flag}).ClientConfig()
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("-w %s: %v; want %q", tc.flag, err, tc.wantErr)
			}
			continue
		}
		if err != nil || config.Host != tc.want {
			t.Errorf("-w %s: host %v, %v; want %s", tc.flag, config, err, tc.want)
		}
	}
}
