package main

import (
	"strings"
	"testing"
)

func TestResolvePath(t *testing.T) {
	for _, tc := range []struct {
		current, arg, want, wantErr string
	}{
		{current: "root", arg: "acme", want: "root:acme"},
		{current: "root:acme", arg: "team-a", want: "root:acme:team-a"},
		{current: "root", arg: "acme:team-a", want: "root:acme:team-a"},
		{current: "root:acme:team-a", arg: ":root:other", want: "root:other"},
		{current: "root:acme", arg: ":root", want: "root"},
		{current: "root:acme", arg: "root", want: "root"},
		{current: "root:acme", arg: "root:other:x", want: "root:other:x"},
		{current: "root:acme", arg: "rooted", want: "root:acme:rooted"},
		{current: "root:acme:team-a", arg: "..", want: "root:acme"},
		{current: "root:acme", arg: "..", want: "root"},
		{current: "root", arg: "..", wantErr: "root has no parent workspace"},
		{current: "root", arg: "Acme", wantErr: `invalid workspace path "root:Acme": "Acme" is not a valid name`},
		{current: "root", arg: "a_b", wantErr: `"a_b" is not a valid name`},
		{current: "root", arg: "acme::b", wantErr: `invalid workspace path "root:acme::b": empty name between colons`},
		{current: "root", arg: "acme:", wantErr: "empty name between colons"},
		{current: "root", arg: "", wantErr: "empty name between colons"},
		{current: "root", arg: ":", wantErr: "empty name between colons"},
		{current: "root", arg: ":acme", wantErr: `invalid workspace path "acme": an absolute path starts with "root"`},
		{current: "root", arg: "../x", wantErr: `"../x" is not a valid name`},
		{current: "root", arg: strings.Repeat("a", 64), wantErr: "is not a valid name"},
	} {
		got, err := resolvePath(tc.current, tc.arg)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("resolvePath(%q, %q) = %q, %v; want error containing %q", tc.current, tc.arg, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolvePath(%q, %q) = %q, %v; want %q", tc.current, tc.arg, got, err, tc.want)
		}
	}
}

func TestParseServerURL(t *testing.T) {
	for _, tc := range []struct {
		server, base, path, wantErr string
	}{
		{server: "https://h:6443/clusters/root:acme", base: "https://h:6443", path: "root:acme"},
		{server: "https://h:6443/clusters/root:acme/", base: "https://h:6443", path: "root:acme"},
		{server: "https://h:6443", base: "https://h:6443", path: "root"},
		{server: "https://h:6443/", base: "https://h:6443", path: "root"},
		{server: "https://h/proxy/clusters/root:a:b", base: "https://h/proxy", path: "root:a:b"},
		{server: "https://h/proxy/", base: "https://h/proxy", path: "root"},
		{server: "https://h/clusters/", wantErr: "empty name between colons"},
		{server: "https://h/clusters/root:Acme", wantErr: `"Acme" is not a valid name`},
		{server: "https://h/clusters/acme", wantErr: `an absolute path starts with "root"`},
		{server: "https://h/clusters/root:acme/api", wantErr: `"acme/api" is not a valid name`},
		{server: "h:6443", wantErr: "lacks a scheme or host"},
		{server: "https://h:bad port", wantErr: "parsing server URL"},
	} {
		got, err := parseServerURL(tc.server)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseServerURL(%q) = %+v, %v; want error containing %q", tc.server, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != (location{base: tc.base, path: tc.path}) {
			t.Errorf("parseServerURL(%q) = %+v, %v; want base %q path %q", tc.server, got, err, tc.base, tc.path)
		}
	}
}

func TestServerURLRoundTrip(t *testing.T) {
	l := location{base: "https://h:6443/prefix", path: "root:acme"}
	if got := l.serverURL(); got != "https://h:6443/prefix/clusters/root:acme" {
		t.Fatalf("serverURL() = %q", got)
	}
	back, err := parseServerURL(l.serverURL())
	if err != nil || back != l {
		t.Fatalf("parseServerURL(serverURL()) = %+v, %v; want %+v", back, err, l)
	}
}

func TestParseTypeReference(t *testing.T) {
	for _, tc := range []struct {
		flag, describe, wantErr string
	}{
		{flag: "", describe: "default"},
		{flag: "universal", describe: "root:universal"},
		{flag: "root:team", describe: "root:team"},
		{flag: "root:acme:team", describe: "root:acme:team"},
		{flag: "root:", wantErr: `invalid workspace type "root:"`},
		{flag: ":team", wantErr: `invalid workspace type ":team"`},
	} {
		typ, err := parseTypeReference(tc.flag)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseTypeReference(%q) = %+v, %v; want error containing %q", tc.flag, typ, err, tc.wantErr)
			}
			continue
		}
		if err != nil || describeType(typ) != tc.describe {
			t.Errorf("parseTypeReference(%q) = %+v (%s), %v; want %s", tc.flag, typ, describeType(typ), err, tc.describe)
		}
	}
}
