// Package etcdserver runs an embedded single-member etcd for the benchmarks, so
// that they compare warren with etcd on the same machine in the same run.
package etcdserver

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Server is a running etcd.
type Server struct {
	// Endpoint is the client URL, http://127.0.0.1:<port>.
	Endpoint string
	// DBFile is etcd's bolt database.
	DBFile string
	e      *embed.Etcd
}

// Start starts etcd with its data in dir/etcd and waits until it serves.
func Start(dir string) (*Server, error) {
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "error"
	client, err := localURL()
	if err != nil {
		return nil, err
	}
	peer, err := localURL()
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		e.Close()
		return nil, fmt.Errorf("etcd did not become ready within a minute")
	}
	return &Server{Endpoint: client.String(), DBFile: filepath.Join(cfg.Dir, "member", "snap", "db"), e: e}, nil
}

// Close stops etcd.
func (s *Server) Close() { s.e.Close() }

// localURL returns an http URL on a free port of the loopback interface.
func localURL() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return &url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}
