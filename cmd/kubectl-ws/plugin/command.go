package plugin

import (
	"context"
	goflag "flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// options are the settings shared by the commands of one run of a plugin.
type options struct {
	out, errOut io.Writer

	// kubeconfig is the --kubeconfig flag; empty means $KUBECONFIG or
	// ~/.kube/config.
	kubeconfig string
	// overrides are the kubectl connection flags (--context, --server, ...).
	overrides clientcmd.ConfigOverrides
	// workspace is the -w flag of create and tree: the workspace to act in
	// instead of the current one.
	workspace string

	// homeDir returns the user's home directory, which "kubectl ws" turns
	// into "~" in its argument, as a shell would have left "~" alone.
	homeDir func() (string, error)
	// The create command waits for a new workspace to show up, then to be
	// ready; kcp polls every 100 ms for 5 s, then every 500 ms for a minute.
	existPoll, existTimeout time.Duration
	readyPoll, readyTimeout time.Duration
}

func newOptions(out, errOut io.Writer) *options {
	return &options{
		out:          out,
		errOut:       errOut,
		homeDir:      os.UserHomeDir,
		existPoll:    100 * time.Millisecond,
		existTimeout: 5 * time.Second,
		readyPoll:    500 * time.Millisecond,
		readyTimeout: time.Minute,
	}
}

// clientConfig is the kubeconfig as the flags select it; with -w its server
// URL addresses that workspace.
func (o *options) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	var config clientcmd.ClientConfig = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &o.overrides)
	if o.workspace != "" {
		config = &workspaceOverride{delegate: config, workspace: o.workspace}
	}
	return config
}

// bindConnectionFlags adds the flags that select the kubeconfig and the
// connection, the subset of kubectl's that kcp's plugins accept.
func (o *options) bindConnectionFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&o.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file")
	flags := clientcmd.RecommendedConfigOverrideFlags("")
	// An empty long name leaves a flag unbound.
	flags.AuthOverrideFlags.ClientCertificate.LongName = ""
	flags.AuthOverrideFlags.ClientKey.LongName = ""
	flags.AuthOverrideFlags.Impersonate.LongName = ""
	flags.AuthOverrideFlags.ImpersonateGroups.LongName = ""
	flags.ContextOverrideFlags.ClusterName.LongName = ""
	flags.Timeout.LongName = ""
	clientcmd.BindOverrideFlags(&o.overrides, cmd.PersistentFlags(), flags)

	// klog's flags (-v and friends) make client-go log its requests.
	klogFlags := goflag.NewFlagSet("klog", goflag.PanicOnError)
	klog.InitFlags(klogFlags)
	cmd.PersistentFlags().AddGoFlagSet(klogFlags)
}

// bindWorkspaceFlag adds -w, which create and tree accept and the others do not.
func (o *options) bindWorkspaceFlag(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.workspace, "workspace", "w", "",
		"Workspace path to target. If not specified, the current workspace from the kubeconfig will be used. "+
			"Use a leading ':' for absolute paths (e.g. ':root:my-ws'), or omit it for relative paths (e.g. 'my-ws'). "+
			"'.' stays in the current workspace, '..' navigates to the parent workspace.")
}

// NewWorkspaceCommand returns the command "kubectl ws", printing results to
// out and notes, warnings and errors to errOut.
func NewWorkspaceCommand(out, errOut io.Writer) *cobra.Command {
	return newWorkspaceCommand(newOptions(out, errOut))
}

// NewCreateWorkspaceCommand returns the command "kubectl create workspace",
// printing like NewWorkspaceCommand.
func NewCreateWorkspaceCommand(out, errOut io.Writer) *cobra.Command {
	return newCreateWorkspaceCommand(newOptions(out, errOut))
}

// Main runs the command newCommand makes on the process's arguments and
// streams, until it ends or an interrupt, and exits 1 if it failed (cobra has
// printed the error): the whole of a plugin binary's main.
func Main(newCommand func(out, errOut io.Writer) *cobra.Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := newCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

func newCreateWorkspaceCommand(o *options) *cobra.Command {
	cmd := newCreateCommand(o, "kubectl create workspace")
	o.bindConnectionFlags(cmd)
	setStreams(cmd, o)
	return cmd
}

// setStreams points cobra's help at out and its "Error: ..." at errOut.
func setStreams(cmd *cobra.Command, o *options) {
	cmd.SetOut(o.out)
	cmd.SetErr(o.errOut)
}

const workspaceExample = `
# shows the workspace you are currently using
kubectl workspace .

# enter a given workspace (this will change the current-context of your current KUBECONFIG)
kubectl workspace use my-workspace

# short-hand for the use syntax
kubectl workspace my-workspace

# enter a given absolute workspace
kubectl workspace :root:default:my-workspace

# short-hand for the current root workspace
kubectl workspace :

# enter a given relative workspace
kubectl workspace some:nested:workspace

# enter the parent workspace
kubectl workspace ..

# enter the grand parent workspace
kubectl workspace ..:..

# enter the previous workspace
kubectl workspace -

# go to your home workspace
kubectl workspace

# create a workspace and immediately enter it
kubectl workspace create my-workspace --enter

# create a context with the current workspace, e.g. root:default:my-workspace
kubectl workspace create-context

# create a context with the current workspace, named context-name
kubectl workspace create-context context-name
`

func newWorkspaceCommand(o *options) *cobra.Command {
	var short bool
	cmd := &cobra.Command{
		Aliases:          []string{"ws", "workspaces"},
		Use:              "workspace [create|create-context|use|current|<workspace>|..|.|-|~|<root:absolute:workspace>]",
		Short:            "Manages kcp workspaces",
		Example:          workspaceExample,
		SilenceUsage:     true,
		TraverseChildren: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			// kcp answers any other number of arguments with help, not an error.
			if len(args) > 1 {
				return cmd.Help()
			}
			var arg string
			if len(args) == 1 {
				arg = args[0]
			}
			return o.use(cmd.Context(), arg, short)
		},
	}
	bindShortFlag(cmd, &short)
	o.bindConnectionFlags(cmd)

	var useShort bool
	use := &cobra.Command{
		Aliases:      []string{"cd"},
		Use:          "use <workspace>|..|.|-|~|<:root:absolute:workspace>|<relative:workspace>",
		Short:        "Uses the given workspace as the current workspace. Using - means previous workspace, .. means parent workspace, . mean current, ~ means home workspace",
		SilenceUsage: true,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return c.Help()
			}
			return o.use(c.Context(), args[0], useShort)
		},
	}
	bindShortFlag(use, &useShort)

	var currentShort bool
	current := &cobra.Command{
		Use:          "current [--short]",
		Short:        "Print the current workspace. Same as 'kubectl ws .'.",
		Example:      "kcp workspace current",
		SilenceUsage: true,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 0 {
				return cmd.Help()
			}
			return o.printCurrent(currentShort)
		},
	}
	bindShortFlag(current, &currentShort)

	var overwrite bool
	createContext := &cobra.Command{
		Use:          "create-context [<context-name>] [--overwrite]",
		Short:        "Create a kubeconfig context for the current workspace",
		Example:      "kcp workspace create-context",
		SilenceUsage: true,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return cmd.Help()
			}
			var name string
			if len(args) == 1 {
				name = args[0]
			}
			config := o.clientConfig()
			starting, err := config.ConfigAccess().GetStartingConfig()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			return o.createContext(config, starting, contextRequest{name: name, overwrite: overwrite})
		},
	}
	createContext.Flags().BoolVar(&overwrite, "overwrite", false, "Overwrite the context if it already exists")

	create := newCreateCommand(o, "kubectl workspace create")
	create.Deprecated = "install the 'kubectl create workspace' plugin instead, compare https://docs.kcp.io/kcp/latest/setup/kubectl-plugin/."
	cmd.AddCommand(use, newTreeCommand(o, cmd), current, create, createContext)

	setStreams(cmd, o)
	// cobra prints a deprecation notice to the command's output writer, which
	// kcp leaves unset, so that the notice goes to stderr: keep it off
	// stdout, where scripts read the result, but keep help on stdout.
	create.SetOut(o.errOut)
	help := create.HelpFunc()
	create.SetHelpFunc(func(c *cobra.Command, args []string) {
		c.SetOut(o.out)
		help(c, args)
	})
	return cmd
}

func bindShortFlag(cmd *cobra.Command, short *bool) {
	cmd.Flags().BoolVar(short, "short", false, "Print only the name of the workspace, e.g. for integration into the shell prompt")
}
