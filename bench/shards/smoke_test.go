package main

import (
	"testing"

	"github.com/warren-dev/warren/test/pgtest"
)

// TestSmoke runs the benchmark small, on SQLite and on PostgreSQL, and checks
// that every phase reported its figures. Speed is reported, not asserted.
func TestSmoke(t *testing.T) {
	p := params{Requests: 50, Clients: 4, Workspaces: 20, Concurrency: 4, Memory: 60}
	for _, storage := range []string{"sqlite", "postgres"} {
		t.Run(storage, func(t *testing.T) {
			res, err := run(t.Context(), p, storage, pgtest.URL())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Gets) != 4 || res.ProxyCPUPerGetMs < 0 {
				t.Errorf("GETs: %+v, proxy CPU per GET %v ms", res.Gets, res.ProxyCPUPerGetMs)
			}
			for _, g := range res.Gets {
				if g.P99Ms <= 0 || g.OpsPerSec <= 0 {
					t.Errorf("GET figures %+v", g)
				}
			}
			if len(res.Creation) != 2 || res.Creation[0].PerSecond <= 0 || res.Creation[1].PerSecond <= 0 {
				t.Errorf("creation figures %+v", res.Creation)
			}
			if n := len(res.Memory); n < 2 || res.Memory[n-1].Workspaces != p.Memory || res.Memory[n-1].ProxyRSSBytes <= 0 {
				t.Errorf("memory figures %+v", res.Memory)
			}
		})
	}
}
