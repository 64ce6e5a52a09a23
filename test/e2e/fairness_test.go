package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/warren-dev/warren/apiserver/flowgate"
	"github.com/warren-dev/warren/test/warrentest"
)

// TestPriorityAndFairnessByWorkspace shows API priority and fairness telling
// flows apart by logical cluster: root holds the configuration (upstream's
// mandatory objects and its global-default, whose flows are workspaces); a
// FlowSchema whose User subject names a workspace's logical cluster gives that
// workspace's requests, whoever makes them, a priority level of its own, and
// one naming a user matches nobody inside workspaces; upstream's consumer
// writes the schemas' status; objects outside root are refused, bad ones get
// field errors.
func TestPriorityAndFairnessByWorkspace(t *testing.T) {
	t.Parallel()
	s := startServer(t, "sqlite")
	s.Workspace("a")
	b := s.Workspace("b")
	ctx := context.Background()
	// closed is a workspace nobody but the admin may enter.
	closed, err := s.CreateWorkspace(ctx, "closed")
	if err != nil {
		t.Fatal(err)
	}
	flows := clientFor(t, s.Config("root")).FlowcontrolV1()

	uid := map[string]string{}
	for _, name := range []string{"exempt", "probes", "global-default", "catch-all"} {
		fs, err := flows.FlowSchemas().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("root's flow schema %s: %v", name, err)
		}
		uid[string(fs.UID)] = name
	}
	for _, name := range []string{"exempt", "global-default", "catch-all"} {
		pl, err := flows.PriorityLevelConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("root's priority level %s: %v", name, err)
		}
		uid[string(pl.UID)] = name
		// Each workspace's flow is dealt one queue of global-default's, so
		// a flooding workspace gets one queue's share, not six, and of 1,024
		// queues, so it rarely shares one with another workspace.
		if q := pl.Spec.Limited; name == "global-default" && (q == nil || q.LimitResponse.Queuing == nil || *q.LimitResponse.Queuing != (flowcontrolv1.QueuingConfiguration{Queues: 1024, HandSize: 1, QueueLengthLimit: 50})) {
			t.Errorf("global-default's queuing is %+v, want 1024 queues, a hand of 1, 50 each", q)
		}
	}

	// classified tells the flow schema and priority level a request for
	// config maps in the cluster of cfg was classified into, as the response
	// names them.
	classified := func(cfg *rest.Config, status int) (string, string, error) {
		c, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return "", "", err
		}
		resp, err := c.Get(cfg.Host + "/api/v1/namespaces/default/configmaps")
		if err != nil {
			return "", "", err
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			return "", "", fmt.Errorf("listing config maps at %s: %s, want %d", cfg.Host, resp.Status, status)
		}
		return uid[resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID)], uid[resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedPriorityLevelConfigurationUID)], nil
	}
	for _, ws := range []string{"a", "b"} {
		s.kubectl(ws, "create", "rolebinding", "devs-view", "--clusterrole=view", "--user=alice", "--group=devs", "--namespace=default")
	}
	want := func(ws, token string, status int, fs, pl string) {
		t.Helper()
		cfg := s.Config(ws)
		if token != "" {
			cfg = s.tokenConfig(token, ws)
		}
		eventually(t, fmt.Sprintf("a request of %q in %s is answered %d, classified %s/%s", token, ws, status, fs, pl), func() error {
			gotFS, gotPL, err := classified(cfg, status)
			if err == nil && (gotFS != fs || gotPL != pl) {
				err = fmt.Errorf("classified %q/%q", gotFS, gotPL)
			}
			return err
		})
	}
	want("a", "alice-token", http.StatusOK, "global-default", "global-default")
	want("b", "alice-token", http.StatusOK, "global-default", "global-default")
	want("b", "", http.StatusOK, "exempt", "exempt")

	// A request served in a limited seat takes a network turn before giving
	// the seat back; the admin's, exempt, take none.
	turns := s.metric("warren_fairness_network_turn_seconds_count")
	for _, cfg := range []*rest.Config{s.tokenConfig("alice-token", "a"), s.Config("a")} {
		for range 3 {
			if _, _, err := classified(cfg, http.StatusOK); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := s.metric("warren_fairness_network_turn_seconds_count") - turns; n != 3 {
		t.Errorf("3 of alice's requests and 3 of the admin's took %v network turns, want 3", n)
	}

	// A priority level of b's own, and a schema for user alice, who in
	// workspaces is known by her workspace.
	pl, err := flows.PriorityLevelConfigurations().Create(ctx, &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-b"},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				LimitResponse: flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeQueue, Queuing: &flowcontrolv1.QueuingConfiguration{}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := pl.Spec.Limited; *l.NominalConcurrencyShares != 30 || *l.LendablePercent != 0 || *l.LimitResponse.Queuing != (flowcontrolv1.QueuingConfiguration{Queues: 64, HandSize: 8, QueueLengthLimit: 50}) {
		t.Errorf("priority level defaulted to %+v, queuing %+v, want v1's defaults", l, *l.LimitResponse.Queuing)
	}
	uid[string(pl.UID)] = pl.Name
	everything := []flowcontrolv1.ResourcePolicyRule{{
		Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}, Namespaces: []string{"*"}, ClusterScope: true,
	}}
	for _, fs := range []*flowcontrolv1.FlowSchema{{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-b"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "tenant-b"},
			MatchingPrecedence:         500,
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{
					{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: b}},
					{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: closed}},
				},
				ResourceRules: everything,
			}},
		},
	}, {
		ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "tenant-b"},
			MatchingPrecedence:         400,
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects:      []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "alice"}}},
				ResourceRules: everything,
			}},
		},
	}, {
		ObjectMeta: metav1.ObjectMeta{Name: "orphan"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "missing"},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects:      []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindGroup, Group: &flowcontrolv1.GroupSubject{Name: "nobody"}}},
				ResourceRules: everything,
			}},
		},
	}} {
		created, err := flows.FlowSchemas().Create(ctx, fs, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uid[string(created.UID)] = created.Name
	}
	want("b", "alice-token", http.StatusOK, "tenant-b", "tenant-b")
	want("b", "bob-token", http.StatusOK, "tenant-b", "tenant-b")
	want("a", "alice-token", http.StatusOK, "global-default", "global-default")
	want("b", "", http.StatusOK, "exempt", "exempt")
	// Carol may not enter closed: her requests there are hers, not its — she
	// cannot queue in its flow, nor tell it from a workspace that is not.
	want("root:closed", "carol-token", http.StatusForbidden, "global-default", "global-default")
	want("root:nowhere", "carol-token", http.StatusForbidden, "global-default", "global-default")
	// In root, which every user reads, a request keeps its user.
	want("root", "alice-token", http.StatusForbidden, "alice", "tenant-b")

	// The consumer of the configuration writes whether a schema's priority
	// level exists.
	eventually(t, "the orphan schema is marked dangling, tenant-b's is not", func() error {
		for name, dangling := range map[string]flowcontrolv1.ConditionStatus{"orphan": flowcontrolv1.ConditionTrue, "tenant-b": flowcontrolv1.ConditionFalse} {
			fs, err := flows.FlowSchemas().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(fs.Status.Conditions) != 1 || fs.Status.Conditions[0].Type != flowcontrolv1.FlowSchemaConditionDangling || fs.Status.Conditions[0].Status != dangling {
				return fmt.Errorf("%s has conditions %+v", name, fs.Status.Conditions)
			}
		}
		return nil
	})
	out := s.kubectl("root", "get", "flowschemas", "orphan", "--no-headers")
	if f := strings.Fields(out); len(f) != 6 || strings.Join(f[:5], " ") != "orphan missing 1000 <none> True" {
		t.Errorf("kubectl get flowschemas orphan: %s, want its priority level, precedence, method and MissingPL", out)
	}

	// The dumps of every request in flight, as /metrics and profiles, are the
	// installation admins', whatever a workspace's RBAC grants.
	s.kubectl("a", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
	for _, path := range []string{"/debug/api_priority_and_fairness/dump_requests", "/metrics", "/debug/pprof/"} {
		eventually(t, "alice, admin of root:a, is refused "+path+" there", func() error {
			c, err := rest.HTTPClientFor(s.tokenConfig("alice-token", "a"))
			if err != nil {
				return err
			}
			resp, err := c.Get(s.ClusterURL("a") + path)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				return fmt.Errorf("%s", resp.Status)
			}
			return nil
		})
	}
	if out := s.kubectl("root", "get", "--raw", "/debug/api_priority_and_fairness/dump_priority_levels"); !strings.Contains(out, "global-default") {
		t.Errorf("the admin's dump of priority levels: %s", out)
	}

	// Configuration anywhere but root would do nothing: refused.
	inA := clientFor(t, s.Config("a")).FlowcontrolV1()
	_, err = inA.FlowSchemas().Create(ctx, &flowcontrolv1.FlowSchema{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Spec: flowcontrolv1.FlowSchemaSpec{
		PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "exempt"},
	}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "root workspace") {
		t.Errorf("a flow schema created in root:a: %v, want Forbidden naming the root workspace", err)
	}

	// Bad objects are refused with the field at fault.
	_, err = flows.FlowSchemas().Create(ctx, &flowcontrolv1.FlowSchema{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: flowcontrolv1.FlowSchemaSpec{
		PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "exempt"},
		MatchingPrecedence:         20000,
		DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: "ByMood"},
		Rules:                      []flowcontrolv1.PolicyRulesWithSubjects{{Subjects: []flowcontrolv1.Subject{{Kind: "Robot"}}}},
	}}, metav1.CreateOptions{})
	wantInvalid(t, err, "spec.matchingPrecedence", "spec.distinguisherMethod.type", "spec.rules[0].subjects[0].kind", "spec.rules[0]")
	_, err = flows.PriorityLevelConfigurations().Create(ctx, &flowcontrolv1.PriorityLevelConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
		Type: flowcontrolv1.PriorityLevelEnablementLimited,
		Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
			LendablePercent: ptr.To[int32](101),
			LimitResponse:   flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeQueue, Queuing: &flowcontrolv1.QueuingConfiguration{Queues: 20_000_000, HandSize: 8}},
		},
	}}, metav1.CreateOptions{})
	wantInvalid(t, err, "spec.limited.lendablePercent", "spec.limited.limitResponse.queuing.queues", "spec.limited.limitResponse.queuing.handSize")
	// Schemas of one precedence match in the order of their names: none
	// but "exempt" may come before it.
	_, err = flows.FlowSchemas().Create(ctx, &flowcontrolv1.FlowSchema{ObjectMeta: metav1.ObjectMeta{Name: "a-first"}, Spec: flowcontrolv1.FlowSchemaSpec{
		PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "tenant-b"},
		MatchingPrecedence:         1,
		Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
			Subjects:      []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindGroup, Group: &flowcontrolv1.GroupSubject{Name: "system:masters"}}},
			ResourceRules: everything,
		}},
	}}, metav1.CreateOptions{})
	wantInvalid(t, err, "spec.matchingPrecedence")
}

// wantInvalid requires err to be 422 Invalid naming every field.
func wantInvalid(t *testing.T, err error, fields ...string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want 422 Invalid", err)
	}
	causes := map[string]bool{}
	for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
		causes[c.Field] = true
	}
	for _, f := range fields {
		if !causes[f] {
			t.Errorf("%v: no cause for %s", err, f)
		}
	}
}

// TestAFloodWaitsBeforePriorityAndFairnessQueues shows a user's requests in a
// workspace joining priority and fairness's queues one at a time: a flood of
// lists from 60 connections on a server of one seat keeps at most one request
// in global-default's queues, 50 waiting before them (the gate's gauge) and
// the rest turned back with 429, so the flood's queue cannot run up the credit
// a queue that never empties gets from fair queuing (apiserver/flowgate).
func TestAFloodWaitsBeforePriorityAndFairnessQueues(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, append(warrentest.Storage(t, "sqlite"), "--max-requests-inflight", "1", "--max-mutating-requests-inflight", "0")...)
	a := s.Workspace("a")
	s.kubectl("a", "create", "rolebinding", "alice-view", "--clusterrole=view", "--user=alice", "--namespace=default")
	for i := range 20 {
		s.kubectl("a", "create", "configmap", fmt.Sprintf("cm-%d", i), "--from-literal=k=v")
	}
	alice := s.tokenConfig("alice-token", "a")
	eventually(t, "alice lists config maps in a", func() error {
		_, err := clientFor(t, alice).CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
		return err
	})

	ctx, stop := context.WithCancel(context.Background())
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	flood := floodLists(ctx, t, alice, flowgate.MaxWaiting+10, func(status int) {
		mu.Lock()
		statuses[status]++
		mu.Unlock()
	})
	defer func() {
		stop()
		flood.Wait()
	}()

	admin, err := rest.HTTPClientFor(s.Config("root"))
	if err != nil {
		t.Fatal(err)
	}
	// queued counts alice's requests waiting in global-default's queues
	// (a place in a queue other than -1).
	queued := func() int {
		n := 0
		for _, c := range dumpedRequests(t, admin, s.URL("/debug/api_priority_and_fairness/dump_requests")) {
			if len(c) > 4 && c[0] == "global-default" && c[3] != "-1" && c[4] == a {
				n++
			}
		}
		return n
	}
	held := false
	for i := 0; i < 20 || !held; i++ {
		if i == 200 {
			t.Fatal("none of the flood's requests ever waited before the queues")
		}
		if n := queued(); n > 1 {
			t.Fatalf("%d of alice's requests in global-default's queues at once, want at most 1", n)
		}
		if !held {
			held = s.metric("warren_fairness_gate_waiting_requests") > 0
		}
	}
	stop()
	flood.Wait()
	mu.Lock()
	defer mu.Unlock()
	if statuses[http.StatusOK] == 0 || statuses[http.StatusTooManyRequests] == 0 || len(statuses) != 2 {
		t.Errorf("the flood was answered %v, want 200s and, beyond the %d waiting, 429s only", statuses, flowgate.MaxWaiting)
	}
}

// TestListsAreChargedByTheirSizeInTheirWorkspace shows priority and fairness
// charging a list by the objects it reads in its own workspace
// (apiserver/listcost): on a server whose global-default gives a request up
// to 5 seats, alice's lists of a's 400 config maps take 4 seats each, bob's
// lists of b's two take one — a count of the resource in the whole server
// would charge both alike, and without any, upstream charges every list one.
// The seats are read from priority and fairness's dump while both flood.
func TestListsAreChargedByTheirSizeInTheirWorkspace(t *testing.T) {
	t.Parallel()
	// 40 seats: global-default's nominal 32 (20 of 25 shares) and its most
	// seats for one request min(ceil(15% of 32), 32 / a hand of 1) = 5.
	s := startServerWith(t, append(warrentest.Storage(t, "sqlite"), "--max-requests-inflight", "40", "--max-mutating-requests-inflight", "0")...)
	ctx := context.Background()
	clusters := map[string]string{}
	flooders := map[string]*rest.Config{}
	for _, w := range []struct {
		workspace, user string
		objects         int
	}{{"a", "alice", 400}, {"b", "bob", 2}} {
		clusters[w.workspace] = s.Workspace(w.workspace)
		s.kubectl(w.workspace, "create", "rolebinding", w.user+"-view", "--clusterrole=view", "--user="+w.user, "--namespace=default")
		admin := s.client(w.workspace)
		for i := range w.objects {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}}
			if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		flooders[w.workspace] = s.tokenConfig(w.user+"-token", w.workspace)
		eventually(t, w.user+" lists config maps in "+w.workspace, func() error {
			_, err := clientFor(t, flooders[w.workspace]).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
			return err
		})
	}

	floodCtx, stop := context.WithCancel(ctx)
	var floods []*sync.WaitGroup
	defer func() {
		stop()
		for _, f := range floods {
			f.Wait()
		}
	}()
	for _, cfg := range flooders {
		floods = append(floods, floodLists(floodCtx, t, cfg, 10, nil))
	}

	admin, err := rest.HTTPClientFor(s.Config("root"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{clusters["a"]: "4", clusters["b"]: "1"}
	seen := map[string]bool{}
	for i := 0; len(seen) < len(want); i++ {
		if i == 500 {
			t.Fatalf("priority and fairness's dump never showed a list of each workspace (seen: %v)", seen)
		}
		for _, c := range dumpedRequests(t, admin, s.URL("/debug/api_priority_and_fairness/dump_requests")) {
			if len(c) < 7 || c[0] != "global-default" {
				continue
			}
			flow, seats := c[4], c[6]
			if w, ok := want[flow]; ok {
				if seats != w {
					t.Fatalf("a list of %s's config maps took %s seats, want %s", flow, seats, w)
				}
				seen[flow] = true
			}
		}
	}
}

// floodLists starts n clients, each on a connection of its own, listing
// cfg's config maps in default as fast as they can until ctx ends; answered,
// if set, is told each answer's status. A client answered 429 pauses 10 ms.
// Wait on the group returned for them to stop.
func floodLists(ctx context.Context, t *testing.T, cfg *rest.Config, n int, answered func(status int)) *sync.WaitGroup {
	t.Helper()
	clients := make([]*http.Client, n)
	for i := range clients {
		c, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	var flood sync.WaitGroup
	for _, c := range clients {
		flood.Go(func() {
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/api/v1/namespaces/default/configmaps", nil)
				if err != nil {
					return
				}
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if answered != nil {
					answered(resp.StatusCode)
				}
				if resp.StatusCode == http.StatusTooManyRequests {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	return &flood
}

// dumpedRequests reads priority and fairness's dump of the requests waiting
// in its queues or executing at url: a row per request, its columns trimmed —
// priority level, flow schema, queue, place in it (-1 once executing), flow
// (a workspace's logical cluster), arrival, initial seats, ….
func dumpedRequests(t *testing.T, admin *http.Client, url string) [][]string {
	t.Helper()
	resp, err := admin.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("priority and fairness's requests: %s %v", resp.Status, err)
	}
	var rows [][]string
	for _, line := range strings.Split(string(body), "\n")[1:] {
		c := strings.Split(line, ",")
		for i := range c {
			c[i] = strings.TrimSpace(c[i])
		}
		rows = append(rows, c)
	}
	return rows
}
