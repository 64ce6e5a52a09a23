package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
	"github.com/warren-dev/warren/tenancy/client"
)

// runEnter enters the workspace arg names, as "kubectl ws <arg>".
func runEnter(cmd *cobra.Command, o *options, arg string) error {
	s, err := newSession(cmd, o)
	if err != nil {
		return err
	}
	target, err := s.target(arg)
	if err != nil {
		return err
	}
	return s.enter(cmd.Context(), target)
}

// target returns the workspace arg names: "-" is the previous workspace, any
// other argument a path resolved against the current one.
func (s *session) target(arg string) (location, error) {
	if arg == "-" {
		return s.kubeconfig.previous()
	}
	path, err := resolvePath(s.current.path, arg)
	if err != nil {
		return location{}, err
	}
	return location{base: s.current.base, path: path}, nil
}

// enter checks that the user may enter target, makes it the current workspace
// and says so.
func (s *session) enter(ctx context.Context, target location) error {
	c, err := s.connect(target.base)
	if err != nil {
		return err
	}
	if err := checkEnterable(ctx, c, target.path); err != nil {
		return err
	}
	if err := s.kubeconfig.switchTo(target); err != nil {
		return err
	}
	printCurrent(s.out, target.path)
	return nil
}

// checkEnterable says why the user cannot enter the workspace at path, or nil
// if they can: it must exist, be ready and let the user in.
func checkEnterable(ctx context.Context, c *client.Client, path string) error {
	if err := checkReadyInParent(ctx, c, path); err != nil {
		return err
	}
	err := checkAccess(ctx, c, path)
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("you may not access workspace %q: %w", path, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("workspace %q not found", path)
	default:
		return fmt.Errorf("accessing workspace %q: %w", path, err)
	}
}

// checkAccess asks the workspace at path for its API discovery, which the
// server answers only to users who may enter the workspace. A workspace that
// is not ready answers 503 with Retry-After: that is an answer too, not to be
// retried.
func checkAccess(ctx context.Context, c *client.Client, path string) error {
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config(path))
	if err != nil {
		return fmt.Errorf("discovery client of workspace %q: %w", path, err)
	}
	return dc.RESTClient().Get().AbsPath("/api").MaxRetries(0).Do(ctx).Error()
}

// checkReadyInParent reads the Workspace of path in its parent and says why
// it cannot be entered. Root has no parent, and a user who may not read the
// parent may still be allowed inside: both pass.
func checkReadyInParent(ctx context.Context, c *client.Client, path string) error {
	parent, name, ok := splitParent(path)
	if !ok {
		return nil
	}
	ws, err := c.Get(ctx, parent, name)
	switch {
	case apierrors.IsForbidden(err):
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("workspace %q not found", path)
	case err != nil:
		return err
	case ws.Status.Phase != corev1alpha1.Ready:
		return fmt.Errorf("workspace %q is not ready (phase %s)", path, phaseOf(ws))
	}
	return nil
}

// phaseOf is the phase of ws for messages.
func phaseOf(ws *tenancyv1alpha1.Workspace) string {
	if ws.Status.Phase == "" {
		return "unknown"
	}
	return string(ws.Status.Phase)
}
