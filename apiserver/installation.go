package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/warren-dev/warren/apiserver/frontproxy"
)

// RunInstallation serves, until ctx ends, an installation of o.Shards shards
// in this process behind a front proxy, for trying shards on one machine: the
// root shard, named after o.Shard, and shards <o.Shard>-1 … -<n-1>, each on a
// free loopback port with its own SQLite file under o.DataDir, or its own
// schema of o.Storage's PostgreSQL database (o.Shard, o.Shard_1, …). The proxy
// serves where `warren start` alone would and writes its admin.kubeconfig in
// o.DataDir, so clients see one server. ready is told the proxy's URL and
// kubeconfig once everything serves.
func RunInstallation(ctx context.Context, o *Options, ready func(url, kubeconfig string)) error {
	if err := o.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	group, ctx := errgroup.WithContext(ctx)
	proxy := frontproxy.NewOptions()
	proxy.DataDir, proxy.PKIDir, proxy.TokenAuthFile = o.DataDir, o.pkiDir(), o.TokenAuthFile
	proxy.SecureServing.BindAddress, proxy.SecureServing.BindPort = o.SecureServing.BindAddress, o.SecureServing.BindPort
	external := "https://" + listenHost(o)
	var root string
	for i := range o.Shards {
		shard, err := o.shardOptions(i, external, root)
		if err != nil {
			return err
		}
		s, err := NewServer(ctx, shard)
		if err != nil {
			return fmt.Errorf("shard %s: %w", shard.Shard, err)
		}
		group.Go(func() error { return s.Run(ctx) })
		if err := waitReady(ctx, s.Kubeconfig); err != nil {
			return fmt.Errorf("shard %s: %w", shard.Shard, errors.Join(err, group.Wait()))
		}
		if i == 0 {
			root = s.Kubeconfig
		}
	}
	proxy.RootShard = root
	p, err := frontproxy.New(proxy)
	if err != nil {
		return errors.Join(err, group.Wait())
	}
	group.Go(func() error { return p.Run(ctx) })
	ready(p.URL, p.Kubeconfig)
	return group.Wait()
}

// pkiDir is where the installation's PKI is kept.
func (o *Options) pkiDir() string {
	if o.PKIDir != "" {
		return o.PKIDir
	}
	return o.DataDir
}

// shardOptions are the options of the i-th shard of an installation in one
// process whose proxy serves at external and whose root shard's kubeconfig is
// root ("" for the root shard itself).
func (o *Options) shardOptions(i int, external, root string) (*Options, error) {
	s := *o
	s.Shards, s.PKIDir, s.ExternalURL, s.RootShard = 1, o.pkiDir(), external, root
	if i > 0 {
		s.Shard = o.Shard + "_" + strconv.Itoa(i)
		s.ShardLabels = nil
	}
	s.DataDir = filepath.Join(o.DataDir, strings.ReplaceAll(s.Shard, "_", "-"))
	if !strings.HasPrefix(o.Storage, "postgres") {
		s.Storage = ""
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	serving := *o.SecureServing.SecureServingOptions
	serving.BindAddress, serving.BindPort = net.ParseIP("127.0.0.1"), port
	s.SecureServing = (&serving).WithLoopback()
	return &s, nil
}

// freePort returns a free TCP port of the loopback interface.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady waits until the server of kubeconfig answers /readyz.
func waitReady(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	base, _, _ := strings.Cut(cfg.Host, "/clusters/")
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the shard to be ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
