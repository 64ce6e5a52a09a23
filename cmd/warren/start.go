package main

import (
	goflag "flag"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/apiserver"
)

func newStartCommand() *cobra.Command {
	o := apiserver.NewOptions()
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Serve the apiserver (SQLite under ./.warren unless --storage says otherwise)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if klogFlags.Lookup("v").Value.String() == "0" {
				if err := quiet(klogFlags); err != nil {
					return err
				}
			}
			// SIGTERM or SIGINT shuts down gracefully; a second one exits at once.
			ctx := genericapiserver.SetupSignalContext()
			s, err := apiserver.NewServer(ctx, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "warren serves %s; use it with:\n  export KUBECONFIG=%s\n", s.URL, s.Kubeconfig)
			return s.Run(ctx)
		},
	}
	o.AddFlags(cmd.Flags())
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
