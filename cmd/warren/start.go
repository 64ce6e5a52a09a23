package main

import (
	goflag "flag"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/apiserver"
)

func newStartCommand() *cobra.Command {
	o := apiserver.NewOptions()
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Serve the apiserver (SQLite under ./.warren unless --storage says otherwise)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// SIGTERM or SIGINT shuts down gracefully; a second one exits at once.
			ctx := genericapiserver.SetupSignalContext()
			s, err := apiserver.NewServer(ctx, o)
			if err != nil {
				return err
			}
			return s.Run(ctx)
		},
	}
	o.AddFlags(cmd.Flags())
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	cmd.Flags().AddGoFlag(klogFlags.Lookup("v"))
	return cmd
}
