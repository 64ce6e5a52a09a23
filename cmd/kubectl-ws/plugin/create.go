package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/kcp-dev/sdk/apis/core"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// createRequest is what "create" was asked to do.
type createRequest struct {
	name string
	// typ is the --type flag: "", "name" or "path:name".
	typ              string
	enter            bool
	ignoreExisting   bool
	locationSelector string
	// createContext names a kubeconfig context to make for the workspace.
	createContext string
}

// newCreateCommand returns the create command; example is how users call it.
func newCreateCommand(o *options, example string) *cobra.Command {
	var r createRequest
	cmd := &cobra.Command{
		Use:          "create",
		Short:        "Creates a new workspace",
		Example:      example + " <workspace name> [--type=<type>] [--enter [--ignore-not-ready]] --ignore-existing",
		SilenceUsage: true,
		Args:         cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := metav1.ParseToLabelSelector(r.locationSelector); err != nil {
				return fmt.Errorf("invalid location selector: %w", err)
			}
			r.name = args[0]
			return o.create(cmd.Context(), r)
		},
	}
	cmd.Flags().StringVar(&r.typ, "type", "", "A workspace type. The default type depends on where this child workspace is created.")
	cmd.Flags().BoolVar(&r.enter, "enter", false, "Immediately enter the created workspace")
	cmd.Flags().BoolVar(&r.ignoreExisting, "ignore-existing", false, "Ignore if the workspace already exists. Requires none or absolute type path. Overwrites the context if --create-context is set.")
	cmd.Flags().StringVar(&r.locationSelector, "location-selector", "", "A label selector to select the scheduling location of the created workspace.")
	cmd.Flags().StringVar(&r.createContext, "create-context", "", "Create a kubeconfig context for the new workspace with the given name.")
	o.bindWorkspaceFlag(cmd)
	return cmd
}

// parseType reads the --type flag: "name" leaves the path to the server,
// "path:name" names the workspace the type is in. Names are lowercased, as
// type names are lowercase.
func parseType(flag string) *tenancyv1alpha1.WorkspaceTypeReference {
	if flag == "" {
		return nil
	}
	i := strings.LastIndex(flag, ":")
	if i < 0 {
		return &tenancyv1alpha1.WorkspaceTypeReference{Name: tenancyv1alpha1.WorkspaceTypeName(strings.ToLower(flag))}
	}
	return &tenancyv1alpha1.WorkspaceTypeReference{
		Name: tenancyv1alpha1.WorkspaceTypeName(strings.ToLower(flag[i+1:])),
		Path: flag[:i],
	}
}

// create creates the workspace r names in the current workspace, waits until
// it is ready and then makes a context for it or enters it.
func (o *options) create(ctx context.Context, r createRequest) error {
	config := o.clientConfig()
	client, err := newClient(config)
	if err != nil {
		return err
	}
	_, parent, err := currentWorkspace(config)
	if err != nil {
		return err
	}
	// An existing workspace's type carries the path the server resolved; only
	// an absolute --type can be compared with it.
	if r.ignoreExisting && r.typ != "" && !logicalcluster.NewPath(r.typ).HasPrefix(core.RootCluster.Path()) {
		return errors.New("--ignore-existing must not be used with non-absolute type path")
	}
	typ := parseType(r.typ)
	ws := &tenancyv1alpha1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: r.name},
		Spec:       tenancyv1alpha1.WorkspaceSpec{Type: typ},
	}
	if r.locationSelector != "" {
		selector, err := metav1.ParseToLabelSelector(r.locationSelector)
		if err != nil {
			return fmt.Errorf("invalid location selector: %w", err)
		}
		ws.Spec.Location = &tenancyv1alpha1.WorkspaceLocation{Selector: selector}
	}

	workspaces := client.Cluster(parent).TenancyV1alpha1().Workspaces()
	existed := false
	ws, err = workspaces.Create(ctx, ws, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) && r.ignoreExisting {
		existed = true
		ws, err = workspaces.Get(ctx, r.name, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}

	reference := fmt.Sprintf("Workspace %q (type %s)", r.name, typeString(ws.Spec.Type))
	ready := ws.Status.Phase == corev1alpha1.LogicalClusterPhaseReady
	switch {
	case existed && typ != nil && ws.Spec.Type != nil && (ws.Spec.Type.Name != "" && ws.Spec.Type.Name != typ.Name || ws.Spec.Type.Path != typ.Path):
		return fmt.Errorf("workspace %q cannot be created with type %s, it already exists with different type %s", r.name, typeString(typ), typeString(ws.Spec.Type))
	case existed && !ready:
		fmt.Fprintf(o.out, "%s already exists. Waiting for it to be ready...\n", reference)
	case existed:
		fmt.Fprintf(o.out, "%s already exists.\n", reference)
	case !ready:
		fmt.Fprintf(o.out, "%s created. Waiting for it to be ready...\n", reference)
	}

	// Workspaces are listed from caches that may lag behind the create:
	// wait until the new one can be read.
	if err := wait.PollUntilContextTimeout(ctx, o.existPoll, o.existTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := workspaces.Get(ctx, ws.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return fmt.Errorf("waiting for workspace %q to show up: %w", r.name, err)
	}
	if !ready {
		if err := wait.PollUntilContextTimeout(ctx, o.readyPoll, o.readyTimeout, true, func(ctx context.Context) (bool, error) {
			ws, err = workspaces.Get(ctx, ws.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return ws.Status.Phase == corev1alpha1.LogicalClusterPhaseReady, nil
		}); err != nil {
			return fmt.Errorf("waiting for workspace %q to be ready: %w", r.name, err)
		}
	}
	fmt.Fprintf(o.out, "%s is ready to use.\n", reference)

	if r.createContext != "" {
		starting, err := config.RawConfig()
		if err != nil {
			return fmt.Errorf("loading kubeconfig: %w", err)
		}
		request := contextRequest{name: r.createContext, server: ws.Spec.URL, overwrite: r.ignoreExisting, keepCurrent: !r.enter}
		if err := o.createContext(config, &starting, request); err != nil {
			return fmt.Errorf("failed to create context: %w", err)
		}
		return nil
	}
	if r.enter {
		return o.use(ctx, ws.Name, false)
	}
	return nil
}
