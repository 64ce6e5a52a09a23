package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/warren-dev/warren/apiserver/frontproxy"
)

func newProxyCommand() *cobra.Command {
	o := frontproxy.NewOptions()
	return serveCommand("proxy", "Serve the front proxy of a sharded installation: one address for every shard's workspaces", o.AddFlags,
		func(ctx context.Context, out io.Writer) error {
			p, err := frontproxy.New(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "warren's front proxy serves %s; use it with:\n  export KUBECONFIG=%s\n", p.URL, p.Kubeconfig)
			return p.Run(ctx)
		})
}
