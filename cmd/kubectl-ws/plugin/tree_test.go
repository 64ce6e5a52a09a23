package plugin

import (
	"strings"
	"testing"

	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
)

func TestDraw(t *testing.T) {
	top := &treeNode{label: ".", children: []*treeNode{{label: "acme", children: []*treeNode{
		{label: "a", children: []*treeNode{
			{label: "a1", children: []*treeNode{{label: "deep"}}},
			{label: "a2"},
		}},
		{label: "b [m]"},
		{label: "c", children: []*treeNode{{label: "c1"}}},
	}}}}
	want := `.
└── acme
    ├── a
    │   ├── a1
    │   │   └── deep
    │   └── a2
    ├── b [m]
    └── c
        └── c1
`
	if got := top.draw(); got != want {
		t.Errorf("draw drew\n%s\nwant\n%s", got, want)
	}
}

func TestTree(t *testing.T) {
	f := newFakeKCP()
	f.add("root:acme")
	f.add("root:acme:b")
	f.add("root:acme:a")
	f.add("root:acme:a:x")
	f.add("root:acme:m").Spec.Mount = &tenancyv1alpha1.Mount{}
	f.add("root:other")
	_, config := startFake(t, f, "root:acme")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ".\n└── acme\n    ├── a\n    │   └── x\n    ├── b\n    └── m [m]\n\n"},
		{[]string{"--full"}, ".\n└── root:acme\n    ├── root:acme:a\n    │   └── root:acme:a:x\n    ├── root:acme:b\n    └── root:acme:m [m]\n\n"},
		{[]string{"-w", ".."}, ".\n└── root\n    ├── acme\n    │   ├── a\n    │   │   └── x\n    │   ├── b\n    │   └── m [m]\n    └── other\n\n"},
		{[]string{"-w", "a", "--wide"}, ".\n└── a      ws=-      lc=Ready\n    └── x  ws=Ready  lc=Ready\n"},
	} {
		if got := mustRun(t, append([]string{"tree", "--kubeconfig", config}, tc.args...)...); got != tc.want {
			t.Errorf("kubectl ws tree %v printed\n%s\nwant\n%s", tc.args, got, tc.want)
		}
	}
}

func TestTreeErrors(t *testing.T) {
	f := newFakeKCP()
	f.forbidden["root"] = true
	_, config := startFake(t, f, "root")
	mustFail(t, "workspaces.tenancy.kcp.io is forbidden: user may not touch workspaces in root", "tree", "--kubeconfig", config)

	noWorkspace := writeKubeconfig(t, strings.Replace(testKubeconfig, "/clusters/root:acme", "", 1))
	if got := mustRun(t, "tree", "--kubeconfig", noWorkspace); got != "current context URL \"https://kcp.example:6443\" does not point directly to a kcp workspace\n" {
		t.Errorf("tree outside a workspace printed %q", got)
	}
}
