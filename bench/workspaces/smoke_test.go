package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"

	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// TestSmoke runs the benchmark at 200 workspaces on a warren it starts, on
// SQLite and on PostgreSQL, checks what it made and wrote, and runs it again to
// see it resume with nothing left to create. Speed is reported, not asserted.
func TestSmoke(t *testing.T) {
	ctx := t.Context()
	binary, err := warrentest.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := params{Count: 200, Objects: 2, Concurrency: 8}
	for _, storage := range []string{"sqlite", "postgres"} {
		t.Run(storage, func(t *testing.T) {
			if storage == "postgres" {
				if err := pgtest.Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			w, err := startWarren(ctx, binary, t.TempDir(), storage, pgtest.URL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.stop)
			kubeconfig := w.Kubeconfig
			base := filepath.Join(t.TempDir(), "workspaces-smoke")

			res, err := runFromKubeconfig(ctx, kubeconfig, p, base, storage == "postgres")
			if err != nil {
				t.Fatalf("%v\nwarren's log:\n%s", err, w.Log())
			}
			printSummary(res)
			if res.Created != p.Count || res.Existing != 0 {
				t.Errorf("created %d workspaces and found %d, want %d and 0", res.Created, res.Existing, p.Count)
			}
			checkWorkspaces(t, kubeconfig, p)
			checkResults(t, base+".json", p, storage == "postgres")
			if err := chart(base, res); err != nil {
				t.Fatal(err)
			}
			for _, ext := range []string{".svg", ".png"} {
				if info, err := os.Stat(base + ext); err != nil || info.Size() == 0 {
					t.Errorf("chart %s: %v", base+ext, err)
				}
			}

			again, err := runFromKubeconfig(ctx, kubeconfig, p, base, storage == "postgres")
			if err != nil {
				t.Fatalf("%v\nwarren's log:\n%s", err, w.Log())
			}
			if again.ResumedAt != p.Count || again.Created != 0 || again.Existing != p.Count {
				t.Errorf("the second run resumed at %d, created %d and found %d workspaces; want %d, 0 and %d",
					again.ResumedAt, again.Created, again.Existing, p.Count, p.Count)
			}
			if n := len(again.Checkpoints); n != len(res.Checkpoints) {
				t.Errorf("the second run has %d checkpoints, the first %d: want those before it kept and the last taken again", n, len(res.Checkpoints))
			}
		})
	}
}

// checkWorkspaces checks that every workspace is Ready and has its configmaps.
func checkWorkspaces(t *testing.T, kubeconfig string, p params) {
	t.Helper()
	ctx := t.Context()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBench(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	workspaces, err := b.workspace.List(ctx, string(org(0)))
	if err != nil {
		t.Fatal(err)
	}
	phases := map[string]corev1alpha1.LogicalClusterPhaseType{}
	for _, ws := range workspaces {
		phases[ws.Name] = ws.Status.Phase
	}
	for i := range p.Count {
		if phases[name(i)] != corev1alpha1.LogicalClusterPhaseReady {
			t.Errorf("workspace %s is %q, want Ready", path(i), phases[name(i)])
			continue
		}
		cms, err := b.core(path(i))
		if err != nil {
			t.Fatal(err)
		}
		list, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, cm := range list.Items {
			names[cm.Name] = true
		}
		for k := range p.Objects {
			if !names[configMap(k).Name] {
				t.Errorf("workspace %s has no configmap %s", path(i), configMap(k).Name)
			}
		}
	}
}

// checkResults checks that the results file parses and that every checkpoint
// sampled the server.
func checkResults(t *testing.T, file string, p params, localPostgres bool) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	if res.Params.Count != p.Count || res.Created != p.Count || res.Machine.NumCPU == 0 {
		t.Errorf("%s: params %+v, created %d, machine %+v", file, res.Params, res.Created, res.Machine)
	}
	if c := res.Creation; c == nil || c.Workspaces != p.Count || c.WarrenCPUMs <= 0 || c.Transactions < 1 || c.Writes < 1 || c.WriteBatches <= 0 ||
		localPostgres != (c.PostgresCPUMs > 0) {
		t.Errorf("%s: the cost of creation is %+v, want it measured for %d workspaces (PostgreSQL's CPU on PostgreSQL only)", file, c, p.Count)
	}
	if want := len(checkpoints(p.Count)) + 1; len(res.Checkpoints) != want {
		t.Errorf("%s has %d checkpoints, want %d", file, len(res.Checkpoints), want)
	}
	for _, c := range res.Checkpoints {
		if c.RSSBytes == 0 || c.DatabaseBytes == 0 {
			t.Errorf("checkpoint at %d workspaces: RSS %d bytes, database %d bytes", c.Workspaces, c.RSSBytes, c.DatabaseBytes)
		}
		if c.Workspaces > 0 && len(c.Latency) != 3 {
			t.Errorf("checkpoint at %d workspaces has %d latencies, want get, list and watch", c.Workspaces, len(c.Latency))
		}
	}
}
