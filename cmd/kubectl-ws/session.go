package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/warren-dev/warren/tenancy/client"
)

// session is one command's view of the kubeconfig: where it points and where
// to print.
type session struct {
	out        io.Writer
	opts       *options
	kubeconfig *kubeconfig
	current    location
}

// newSession loads the kubeconfig and reads the current workspace from it.
func newSession(cmd *cobra.Command, o *options) (*session, error) {
	k, err := loadKubeconfig(o.kubeconfig)
	if err != nil {
		return nil, err
	}
	current, err := k.current()
	if err != nil {
		return nil, err
	}
	return &session{out: cmd.OutOrStdout(), opts: o, kubeconfig: k, current: current}, nil
}

// connect returns a client of the workspaces of the server at base, with the
// current context's credentials.
func (s *session) connect(base string) (*client.Client, error) {
	config, err := s.kubeconfig.restConfig()
	if err != nil {
		return nil, err
	}
	config.Host = base
	return client.New(config)
}
