package robustness

import (
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

func op(client int, call, ret int64, in input, out output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

// TestCheckersCatchViolations feeds the checkers histories that break each
// guarantee: every one must be flagged, and the correct ones must pass.
func TestCheckersCatchViolations(t *testing.T) {
	created := op(0, 0, 10, input{Kind: "create", Key: "k", Value: "a"}, output{Outcome: "ok", RV: "5"})
	histories := []struct {
		name  string
		ops   []porcupine.Operation
		legal bool
	}{
		{"read after create", []porcupine.Operation{created, op(1, 20, 30, input{Kind: "get", Key: "k"}, output{Outcome: "ok", Value: "a", RV: "5"})}, true},
		{"acknowledged create lost", []porcupine.Operation{created, op(1, 20, 30, input{Kind: "get", Key: "k"}, output{Outcome: "notfound"})}, false},
		{"stale read after update", []porcupine.Operation{
			created,
			op(0, 20, 30, input{Kind: "update", Key: "k", Value: "b", ExpectRV: "5"}, output{Outcome: "ok", RV: "7"}),
			op(1, 40, 50, input{Kind: "get", Key: "k"}, output{Outcome: "ok", Value: "a", RV: "5"}),
		}, false},
		{"two CAS winners", []porcupine.Operation{
			created,
			op(0, 20, 30, input{Kind: "update", Key: "k", Value: "b", ExpectRV: "5"}, output{Outcome: "ok", RV: "7"}),
			op(1, 21, 31, input{Kind: "update", Key: "k", Value: "c", ExpectRV: "5"}, output{Outcome: "ok", RV: "8"}),
		}, false},
		{"unknown write seen later", []porcupine.Operation{
			created,
			op(0, 20, 20+unknownWithin.Nanoseconds(), input{Kind: "update", Key: "k", Value: "b", ExpectRV: "5"}, output{Outcome: "unknown"}),
			op(1, 40, 50, input{Kind: "get", Key: "k"}, output{Outcome: "ok", Value: "b", RV: "9"}),
		}, true},
		{"delete then read", []porcupine.Operation{
			created,
			op(0, 20, 30, input{Kind: "delete", Key: "k", ExpectRV: "5"}, output{Outcome: "ok"}),
			op(1, 40, 50, input{Kind: "get", Key: "k"}, output{Outcome: "ok", Value: "a", RV: "5"}),
		}, false},
	}
	for _, h := range histories {
		if legal := porcupine.CheckOperations(model, h.ops); legal != h.legal {
			t.Errorf("%s: linearizable = %v, want %v", h.name, legal, h.legal)
		}
		if !h.legal && len(shortestIllegal(h.ops)) == 0 {
			t.Errorf("%s: no explanation", h.name)
		}
	}

	acked := []ackedWrite{{Key: "k", Kind: "create", Value: "a", RV: "5"}, {Key: "k", Kind: "update", Value: "b", RV: "7"}}
	streams := []struct {
		name   string
		events []watchEvent
		gaps   [][2]int64
		want   string
	}{
		{"complete", []watchEvent{{"ADDED", "k", "a", "5"}, {"MODIFIED", "k", "b", "7"}}, nil, ""},
		{"missing event", []watchEvent{{"ADDED", "k", "a", "5"}}, nil, "never reached the watcher"},
		{"wrong value", []watchEvent{{"ADDED", "k", "a", "5"}, {"MODIFIED", "k", "x", "7"}}, nil, "arrived as"},
		{"skipped by a relist", []watchEvent{{"ADDED", "k", "a", "5"}}, [][2]int64{{5, 9}}, ""},
		{"deleted as last delivered", []watchEvent{{"ADDED", "k", "a", "5"}, {"MODIFIED", "k", "b", "7"}, {"DELETED", "k", "b", "8"}}, nil, ""},
		{"deleted with a stale previous object", []watchEvent{{"ADDED", "k", "a", "5"}, {"MODIFIED", "k", "b", "7"}, {"DELETED", "k", "a", "8"}}, nil,
			"the previous event of k delivered"},
		{"deleted after a relist", []watchEvent{{"ADDED", "k", "a", "5"}, {"MODIFIED", "k", "b", "7"}, {"DELETED", "k", "c", "9"}}, [][2]int64{{7, 8}}, ""},
	}
	for _, s := range streams {
		w := &watcher{start: 1, last: 9, events: s.events, gaps: s.gaps}
		got := strings.Join(w.check(acked), "\n")
		if s.want == "" && got != "" || s.want != "" && !strings.Contains(got, s.want) {
			t.Errorf("%s: violations %q, want %q", s.name, got, s.want)
		}
	}
}
