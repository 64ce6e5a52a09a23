package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
	"github.com/warren-dev/warren/tenancy/client"
)

func newCreateCommand(o *options) *cobra.Command {
	var typeFlag string
	var enter bool
	cmd := &cobra.Command{
		Use:   "create <name>",
		Short: "Create a workspace in the current workspace and wait until it is ready",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			typ, err := parseTypeReference(typeFlag)
			if err != nil {
				return err
			}
			s, err := newSession(cmd, o)
			if err != nil {
				return err
			}
			return s.create(cmd.Context(), args[0], typ, enter)
		},
	}
	cmd.Flags().StringVar(&typeFlag, "type", "", `workspace type, "<name>" or "<path>:<name>" (default: the current workspace type's default child type)`)
	cmd.Flags().BoolVar(&enter, "enter", false, "enter the workspace once it is ready")
	return cmd
}

// parseTypeReference reads the --type flag: "name" is a type in root,
// "path:name" a type in the workspace at path; empty leaves the choice to the
// server.
func parseTypeReference(flag string) (corev1alpha1.TypeReference, error) {
	if flag == "" {
		return corev1alpha1.TypeReference{}, nil
	}
	path, name, ok := splitParent(flag)
	if !ok {
		return corev1alpha1.TypeReference{Name: flag}, nil
	}
	if path == "" || name == "" {
		return corev1alpha1.TypeReference{}, fmt.Errorf("invalid workspace type %q: want <name> or <path>:<name>", flag)
	}
	return corev1alpha1.TypeReference{Path: path, Name: name}, nil
}

// describeType writes a type reference as path:name for messages.
func describeType(typ corev1alpha1.TypeReference) string {
	if typ.Name == "" {
		return "default"
	}
	path := typ.Path
	if path == "" {
		path = rootPath
	}
	return path + separator + typ.Name
}

// create creates the workspace name of type typ in the current workspace,
// waits until it is ready, and enters it if enter is set.
func (s *session) create(ctx context.Context, name string, typ corev1alpha1.TypeReference, enter bool) error {
	c, err := s.connect(s.current.base)
	if err != nil {
		return err
	}
	ws, err := c.Create(ctx, s.current.path, name, typ)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "Workspace %q (type %s) created. Waiting for it to be ready...\n", name, describeType(ws.Spec.Type))
	ws, err = s.waitReady(ctx, c, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "Workspace %q (type %s) is ready to use.\n", name, describeType(ws.Spec.Type))
	if !enter {
		return nil
	}
	return s.enter(ctx, location{base: s.current.base, path: s.current.path + separator + name})
}

// waitReady polls the workspace name in the current workspace until its phase
// is Ready, and fails if it is not within the options' timeout.
func (s *session) waitReady(ctx context.Context, c *client.Client, name string) (*tenancyv1alpha1.Workspace, error) {
	path := s.current.path + separator + name
	var last *tenancyv1alpha1.Workspace
	ready := func(ctx context.Context) (bool, error) {
		ws, err := c.Get(ctx, s.current.path, name)
		if err != nil {
			return false, err
		}
		last = ws
		if ws.Status.Phase == corev1alpha1.Terminating {
			return false, fmt.Errorf("workspace %q is terminating", path)
		}
		return ws.Status.Phase == corev1alpha1.Ready, nil
	}
	deadline := time.Now().Add(s.opts.readyTimeout)
	pollCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := wait.PollUntilContextCancel(pollCtx, s.opts.pollInterval, true, ready)
	switch {
	case err == nil:
		return last, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("waiting for workspace %q: %w", path, ctx.Err())
	// A request cut short by the deadline fails before pollCtx says it is
	// done: the clock, not the error, tells that the time is up.
	case !time.Now().Before(deadline):
		return nil, notReadyError(path, s.opts.readyTimeout, last)
	default:
		return nil, fmt.Errorf("waiting for workspace %q: %w", path, err)
	}
}

// notReadyError says that the workspace at path was not ready in time, and
// what it was last seen waiting for.
func notReadyError(path string, timeout time.Duration, last *tenancyv1alpha1.Workspace) error {
	if last == nil {
		return fmt.Errorf("workspace %q was not ready within %s", path, timeout)
	}
	detail := "phase " + phaseOf(last)
	if waiting := unmetConditions(last.Status.Conditions); waiting != "" {
		detail += "; " + waiting
	}
	return fmt.Errorf("workspace %q was not ready within %s (%s)", path, timeout, detail)
}

// unmetConditions describes the conditions that are not true, as
// "Type: Message", separated by semicolons.
func unmetConditions(conditions []metav1.Condition) string {
	var unmet []string
	for _, c := range conditions {
		if c.Status != metav1.ConditionTrue {
			unmet = append(unmet, c.Type+": "+c.Message)
		}
	}
	return strings.Join(unmet, "; ")
}
