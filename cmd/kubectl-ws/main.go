// Command kubectl-ws is the kubectl plugin "kubectl ws" for warren: it shows and
// changes the workspace that the kubeconfig's current context addresses, creates
// workspaces, and draws the tree of workspaces below the current one.
//
// The current workspace is the path after /clusters/ in the server URL of the
// current context's cluster, or root if the URL has none. Changing workspace
// rewrites that URL and keeps the one before it in the kubeconfig's cluster and
// context "workspace.warren.dev/previous", to which "kubectl ws -" returns.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
)

// options are the settings of one run of the plugin.
type options struct {
	// kubeconfig is the --kubeconfig flag: the file to use instead of the
	// files $KUBECONFIG or ~/.kube/config name.
	kubeconfig string
	// pollInterval is how often "create" looks whether the new workspace is ready.
	pollInterval time.Duration
	// readyTimeout is how long "create" waits for the new workspace to be ready.
	readyTimeout time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	o := &options{pollInterval: 100 * time.Millisecond, readyTimeout: time.Minute}
	code := run(ctx, o, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the plugin with args, printing results to stdout and an error to
// stderr, and returns the process's exit code.
func run(ctx context.Context, o *options, args []string, stdout, stderr io.Writer) int {
	cmd := newRootCommand(o)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

func newRootCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ws [<workspace> | .. | - | :root:<path>]",
		Short: "Show or change the current warren workspace",
		Long: `Show or change the warren workspace that the kubeconfig's current context addresses.

Without an argument, print the current workspace. With one, enter a workspace:
  ..             the parent workspace
  -              the workspace entered before the current one
  :root:a:b      an absolute path (so is anything starting with "root")
  a:b            a path relative to the current workspace

Workspaces named like a subcommand (create, current, tree, help) must be given
as an absolute path.`,
		Args:              cobra.MaximumNArgs(1),
		SilenceUsage:      true,
		SilenceErrors:     true,
		Annotations:       map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl ws"},
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return runCurrent(cmd, o)
			}
			return runEnter(cmd, o, args[0])
		},
	}
	cmd.PersistentFlags().StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	cmd.AddCommand(newCurrentCommand(o), newCreateCommand(o), newTreeCommand(o))
	return cmd
}

func newCurrentCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "current",
		Short: "Print the current workspace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCurrent(cmd, o)
		},
	}
}

// runCurrent prints the current workspace; it needs no request to the server.
func runCurrent(cmd *cobra.Command, o *options) error {
	s, err := newSession(cmd, o)
	if err != nil {
		return err
	}
	printCurrent(s.out, s.current.path)
	return nil
}

// printCurrent tells the user which workspace is current.
func printCurrent(w io.Writer, path string) {
	fmt.Fprintf(w, "Current workspace is %q.\n", path)
}
