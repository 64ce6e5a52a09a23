package main

import (
	"strings"
	"testing"
)

func TestDrawTree(t *testing.T) {
	root := &treeNode{name: "root:acme", children: []*treeNode{
		{name: "a", children: []*treeNode{
			{name: "a1", children: []*treeNode{{name: "deep"}}},
			{name: "a2", note: "Initializing"},
		}},
		{name: "b", note: "not allowed to list its workspaces"},
		{name: "c", children: []*treeNode{{name: "c1"}}},
	}}
	want := `root:acme
├── a
│   ├── a1
│   │   └── deep
│   └── a2 (Initializing)
├── b (not allowed to list its workspaces)
└── c
    └── c1
`
	var out strings.Builder
	drawTree(&out, root)
	if out.String() != want {
		t.Errorf("drawTree drew\n%s\nwant\n%s", out.String(), want)
	}
}

func TestDrawTreeLeaf(t *testing.T) {
	var out strings.Builder
	drawTree(&out, &treeNode{name: "root"})
	if out.String() != "root\n" {
		t.Errorf("drawTree drew %q, want %q", out.String(), "root\n")
	}
}
