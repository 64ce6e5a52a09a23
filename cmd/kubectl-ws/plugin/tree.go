package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kcp-dev/logicalcluster/v3"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// treeRequest is how "tree" was asked to draw.
type treeRequest struct {
	// full labels workspaces by path instead of by name.
	full bool
	// wide adds the phases of each Workspace and its LogicalCluster.
	wide bool
}

func newTreeCommand(o *options, root *cobra.Command) *cobra.Command {
	var r treeRequest
	cmd := &cobra.Command{
		Use:          "tree",
		Short:        "Print the current workspace tree.",
		Example:      "kcp workspace tree",
		SilenceUsage: true,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 0 {
				return root.Help()
			}
			return o.tree(c.Context(), r)
		},
	}
	cmd.Flags().BoolVarP(&r.full, "full", "f", false, "Show full workspace names")
	cmd.Flags().BoolVar(&r.wide, "wide", false, "Show workspace and logical cluster status for each node")
	o.bindWorkspaceFlag(cmd)
	return cmd
}

// tree draws the workspaces below the current one, recursively.
func (o *options) tree(ctx context.Context, r treeRequest) error {
	config := o.clientConfig()
	client, err := newClient(config)
	if err != nil {
		return err
	}
	rc, err := config.ClientConfig()
	if err != nil {
		return err
	}
	_, current, err := parseClusterURL(rc.Host)
	if err != nil {
		// A context may address a mount or a cluster outside any workspace:
		// there is no tree to draw, and that is no failure.
		_, err = fmt.Fprintf(o.out, "current context URL %q does not point directly to a kcp workspace\n", rc.Host)
		return err
	}

	t := treeBuilder{client: client, request: r}
	name := current.String()
	if !r.full {
		name = current.Base()
	}
	label := name
	if r.wide {
		label = t.wideLabel(ctx, name, current, "")
	}
	top := &treeNode{label: label}
	if err := t.addChildren(ctx, top, current, name); err != nil {
		return err
	}
	// The drawing starts with a "." line above the current workspace and,
	// when not wide, ends with an empty line: kcp's does.
	drawing := (&treeNode{label: ".", children: []*treeNode{top}}).draw()
	if !r.wide {
		_, err = fmt.Fprintln(o.out, drawing)
		return err
	}
	w := tabwriter.NewWriter(o.out, 0, 0, 2, ' ', 0)
	fmt.Fprint(w, drawing)
	return w.Flush()
}

// treeBuilder lists workspaces into a tree.
type treeBuilder struct {
	client  *kcpclientset.ClusterClientset
	request treeRequest
}

// addChildren adds to node the workspaces in the workspace at p, labelled
// name, recursively. A workspace whose Workspaces are not served has none.
func (t *treeBuilder) addChildren(ctx context.Context, node *treeNode, p logicalcluster.Path, name string) error {
	list, err := t.client.Cluster(p).TenancyV1alpha1().Workspaces().List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ws := range list.Items {
		// Listing inside a workspace being deleted may fail; it is gone soon.
		if ws.DeletionTimestamp != nil {
			continue
		}
		childName := ws.Name
		if t.request.full {
			childName = name + ":" + ws.Name
		}
		// A mounted workspace's content is not workspaces, and its URL may
		// lead back into the parent, so the tree stops there.
		if ws.Spec.Mount != nil {
			node.children = append(node.children, &treeNode{label: childName + " [m]"})
			continue
		}
		// The Workspace's URL, not parent and name, tells where it lives:
		// it may be elsewhere than below the parent's path.
		_, child, err := parseClusterURL(ws.Spec.URL)
		if err != nil {
			return fmt.Errorf("current config context URL %q does not point to workspace", ws.Spec.URL)
		}
		label := childName
		if t.request.wide {
			label = t.wideLabel(ctx, childName, child, ws.Status.Phase)
		}
		n := &treeNode{label: label}
		node.children = append(node.children, n)
		if err := t.addChildren(ctx, n, child, childName); err != nil {
			return err
		}
	}
	return nil
}

// wideLabel is name followed by the phase of its Workspace ("-" for the top,
// whose Workspace is not read) and of its LogicalCluster ("Unknown" if it
// cannot be read), tab-separated for alignment.
func (t *treeBuilder) wideLabel(ctx context.Context, name string, p logicalcluster.Path, phase corev1alpha1.LogicalClusterPhaseType) string {
	clusterPhase := corev1alpha1.LogicalClusterPhaseType("Unknown")
	lc, err := t.client.Cluster(p).CoreV1alpha1().LogicalClusters().Get(ctx, corev1alpha1.LogicalClusterName, metav1.GetOptions{})
	if err == nil && lc.Status.Phase != "" {
		clusterPhase = lc.Status.Phase
	}
	workspacePhase := "-"
	if phase != "" {
		workspacePhase = string(phase)
	}
	return fmt.Sprintf("%s\tws=%s\tlc=%s", name, workspacePhase, clusterPhase)
}

// treeNode is a line of the drawn tree and the lines below it.
type treeNode struct {
	label    string
	children []*treeNode
}

// draw draws the tree below n as the tree library kcp uses does: n's label,
// then each child on its own line after "├── " or, for the last, "└── ",
// below which the lines of a child's subtree are indented by "│   " or,
// below the last child, four spaces.
func (n *treeNode) draw() string {
	var b strings.Builder
	b.WriteString(n.label + "\n")
	drawChildren(&b, n.children, "")
	return b.String()
}

func drawChildren(w io.StringWriter, nodes []*treeNode, indent string) {
	for i, n := range nodes {
		branch, below := "├── ", "│   "
		if i == len(nodes)-1 {
			branch, below = "└── ", "    "
		}
		_, _ = w.WriteString(indent + branch + n.label + "\n")
		drawChildren(w, n.children, indent+below)
	}
}
