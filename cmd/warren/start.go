package main

import (
	"context"
	goflag "flag"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/apiserver"
)

func newStartCommand() *cobra.Command {
	o := apiserver.NewOptions()
	return serveCommand("start", "Serve the apiserver (SQLite under ./.warren unless --storage says otherwise)", o.AddFlags,
		func(ctx context.Context, out io.Writer) error {
			if o.Shards > 1 {
				return apiserver.RunInstallation(ctx, o, func(url, kubeconfig string) {
					fmt.Fprintf(out, "warren serves %d shards behind %s; use them with:\n  export KUBECONFIG=%s\n", o.Shards, url, kubeconfig)
				})
			}
			s, err := apiserver.NewServer(ctx, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "warren serves %s; use it with:\n  export KUBECONFIG=%s\n", s.URL, s.Kubeconfig)
			return s.Run(ctx)
		})
}

// serveCommand is a command that serves until SIGTERM or SIGINT (a second one
// exits at once): run, with the flags addFlags adds and klog's -v.
func serveCommand(use, short string, addFlags func(*pflag.FlagSet), run func(ctx context.Context, out io.Writer) error) *cobra.Command {
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	gc := newGCOptions()
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if klogFlags.Lookup("v").Value.String() == "0" {
				if err := quiet(klogFlags); err != nil {
					return err
				}
			}
			if err := gc.apply(cmd.Flags()); err != nil {
				return err
			}
			return run(genericapiserver.SetupSignalContext(), cmd.OutOrStdout())
		},
	}
	addFlags(cmd.Flags())
	gc.addFlags(cmd.Flags())
	cmd.Flags().AddGoFlag(klogFlags.Lookup("v"))
	return cmd
}

// quiet keeps the log at the default verbosity to what an operator acts on:
// warnings and errors, on standard error. Upstream's informational lines
// (the groups installed, the controllers started) need --v=1 or more.
func quiet(klogFlags *goflag.FlagSet) error {
	// klog writes to files when not only to standard error: give it none.
	for _, severity := range []string{"INFO", "WARNING", "ERROR", "FATAL"} {
		klog.SetOutputBySeverity(severity, io.Discard)
	}
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "WARNING"} {
		if err := klogFlags.Set(name, value); err != nil {
			return fmt.Errorf("setting klog's %s: %w", name, err)
		}
	}
	return nil
}
