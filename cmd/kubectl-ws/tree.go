package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
	"github.com/warren-dev/warren/tenancy/client"
)

func newTreeCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "tree",
		Short: "Draw the tree of workspaces below the current workspace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := newSession(cmd, o)
			if err != nil {
				return err
			}
			c, err := s.connect(s.current.base)
			if err != nil {
				return err
			}
			root, err := tree(cmd.Context(), c, s.current.path, s.current.path)
			if err != nil {
				return err
			}
			drawTree(s.out, root)
			return nil
		},
	}
}

// treeNode is a workspace in the drawn tree.
type treeNode struct {
	name string
	// note says why the node's children are not shown, if they are not.
	note     string
	children []*treeNode
}

// label is the node's line in the drawn tree.
func (n *treeNode) label() string {
	if n.note == "" {
		return n.name
	}
	return n.name + " (" + n.note + ")"
}

// tree lists the workspaces below the workspace at path, recursively, into a
// tree whose root is labelled name. A workspace whose children cannot be
// listed becomes a node with a note saying why.
func tree(ctx context.Context, c *client.Client, path, name string) (*treeNode, error) {
	node := &treeNode{name: name}
	workspaces, err := c.List(ctx, path)
	if err != nil {
		node.note = listFailureNote(err)
		if node.note == "" {
			return nil, err
		}
		return node, nil
	}
	sortByName(workspaces)
	for i := range workspaces {
		child, err := childTree(ctx, c, path, &workspaces[i])
		if err != nil {
			return nil, err
		}
		node.children = append(node.children, child)
	}
	return node, nil
}

// childTree is the tree of ws, a workspace in the workspace at parent; only a
// ready workspace can be listed.
func childTree(ctx context.Context, c *client.Client, parent string, ws *tenancyv1alpha1.Workspace) (*treeNode, error) {
	if ws.Status.Phase != corev1alpha1.Ready {
		return &treeNode{name: ws.Name, note: phaseOf(ws)}, nil
	}
	return tree(ctx, c, parent+separator+ws.Name, ws.Name)
}

// listFailureNote is the note of a node whose workspaces could not be listed
// because of err, or "" if err is not about the user or the workspace.
func listFailureNote(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return "not allowed to list its workspaces"
	case apierrors.IsNotFound(err):
		return "not found"
	default:
		return ""
	}
}

// sortByName sorts workspaces by name.
func sortByName(workspaces []tenancyv1alpha1.Workspace) {
	slices.SortFunc(workspaces, func(a, b tenancyv1alpha1.Workspace) int {
		return strings.Compare(a.Name, b.Name)
	})
}

// drawTree draws the tree below root with box-drawing characters, one node
// per line.
func drawTree(w io.Writer, root *treeNode) {
	fmt.Fprintln(w, root.label())
	drawChildren(w, root.children, "")
}

// drawChildren draws nodes, the children of one node, each line starting
// with indent.
func drawChildren(w io.Writer, nodes []*treeNode, indent string) {
	for i, n := range nodes {
		branch, below := "├── ", "│   "
		if i == len(nodes)-1 {
			branch, below = "└── ", "    "
		}
		fmt.Fprintln(w, indent+branch+n.label())
		drawChildren(w, n.children, indent+below)
	}
}
