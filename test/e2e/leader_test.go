package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// metric is the value of the sample of s's /metrics that line starts with, 0
// if there is none.
func metric(t *testing.T, s *server, sample string) float64 {
	t.Helper()
	body, err := s.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(body) {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// leads tells whether s says on /metrics that it leads its shard.
func leads(t *testing.T, s *server) bool {
	t.Helper()
	ok, err := s.Leads()
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// reconciled is how many objects s's workspace controller reconciled.
func reconciled(t *testing.T, s *server) float64 {
	t.Helper()
	return metric(t, s, `workqueue_work_duration_seconds_count{name="workspaces"}`)
}

var errNoLeader = errors.New("no process leads the shard")

// TestTwoProcessesOneShard runs two warren processes on one PostgreSQL schema
// with one PKI, as a shard served by several processes behind a load balancer
// is: each serves what the other writes; exactly one leads, and runs the
// controllers, yet a workspace made through either becomes Ready; after kill
// -9 of the leader the other leads within seconds and its workspaces become
// Ready; the killed one, back, follows.
func TestTwoProcessesOneShard(t *testing.T) {
	t.Parallel()
	args := append(warrentest.Storage(t, "postgres"), "--pki-dir", filepath.Join(t.TempDir(), "pki"))
	first := startServerWith(t, args...)
	second := startServerWith(t, args...)
	servers := []*server{first, second}
	leader := func() *server {
		t.Helper()
		var found *server
		eventually(t, "exactly one leader", func() error {
			found = nil
			for _, s := range servers {
				if leads(t, s) {
					if found != nil {
						t.Fatal("both processes lead the shard")
					}
					found = s
				}
			}
			if found == nil {
				return errNoLeader
			}
			return nil
		})
		return found
	}
	ready := func(s *server, name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.CreateWorkspace(ctx, name); err != nil {
			t.Fatalf("a workspace made through %s: %v", s.URL(""), err)
		}
	}
	ctx := context.Background()
	if _, err := first.client("root").CoreV1().ConfigMaps("default").Create(ctx, configMap("shared"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other process reads the config map", func() error {
		_, err := second.client("root").CoreV1().ConfigMaps("default").Get(ctx, "shared", metav1.GetOptions{})
		return err
	})

	old := leader()
	follower := first
	if old == first {
		follower = second
	}
	ready(follower, "via-follower")
	ready(old, "via-leader")
	if n := reconciled(t, follower); n != 0 {
		t.Errorf("the follower reconciled %v workspaces", n)
	}
	if n := reconciled(t, old); n == 0 {
		t.Error("the leader reconciled no workspace")
	}

	old.Kill()
	start := time.Now()
	servers = []*server{follower}
	if leader() != follower {
		t.Fatal("the survivor does not lead")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the survivor took over %s after the leader was killed", took)
	}
	ready(follower, "after-takeover")
	if n := reconciled(t, follower); n == 0 {
		t.Error("the new leader reconciled no workspace")
	}

	old.Launch()
	servers = []*server{first, second}
	for range 3 {
		if leader() != follower {
			t.Error("the process that came back took the lead")
		}
		time.Sleep(time.Second)
	}
	ready(old, "via-returned")
}

// TestCachesFollowOtherProcesses: what one process of a shard writes, another
// acts on within a moment, whatever it caches — RBAC (a binding granted, then
// revoked), a CRD (its resource served), a workspace (its path resolved) — and
// again after every session of the shard was terminated, which restarts the
// watches its caches follow.
func TestCachesFollowOtherProcesses(t *testing.T) {
	t.Parallel()
	args := append(warrentest.Storage(t, "postgres"), "--pki-dir", filepath.Join(t.TempDir(), "pki"))
	a := startServerWith(t, args...)
	b := startServerWith(t, args...)
	a.Workspace("team")
	within := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		for {
			err := f()
			if err == nil {
				t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s: not within 5 s: %v", what, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Writes are retried: right after the sessions are terminated, a
	// request may meet a dead connection of the pool once.
	write := func(stdin string, args ...string) {
		t.Helper()
		within("kubectl "+strings.Join(args, " "), func() error {
			if out, err := a.kubectlIn(stdin, "root:team", args...); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	}
	round := func(n string) {
		t.Helper()
		write("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: alice-"+n+", namespace: default}\n"+
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{kind: User, name: alice}]\n", "apply", "-f", "-")
		within(n+": the other process lets alice read", func() error {
			out, err := b.kubectlAs("alice-token", "root:team", "get", "configmaps", "-n", "default")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		write("", "delete", "rolebinding", "alice-"+n, "-n", "default", "--ignore-not-found")
		within(n+": the other process no longer lets alice read", func() error {
			if _, err := b.kubectlAs("alice-token", "root:team", "get", "configmaps", "-n", "default"); err == nil {
				return errors.New("alice still reads")
			}
			return nil
		})
		crd := fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets%[1]s.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets%[1]s, singular: gadget%[1]s, kind: Gadget%[1]s, listKind: Gadget%[1]sList}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`, n)
		write(crd, "apply", "-f", "-")
		within(n+": the other process serves the CRD's resource", func() error {
			out, err := b.kubectlAs("", "root:team", "get", "gadgets"+n+".example.com", "-n", "default")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		write("apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {name: ws"+n+"}\n", "apply", "-f", "-")
		within(n+": the other process resolves the new workspace's path", func() error {
			out, err := b.kubectlAs("", "root:team:ws"+n, "get", "namespaces")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	}
	round("one")
	conn, err := pgx.Connect(context.Background(), pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", "warren/"+args[3]); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	round("two")
}
