package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// A key of the store is a register with compare-and-swap on its revision: the
// model porcupine checks a recorded history against.

type registerInput struct {
	op     string // get, create, update, delete
	key    string
	value  string
	expect int64 // update and delete: the revision the key must have
}

type registerOutput struct {
	ok       bool // the write applied, or the get found the key
	missing  bool // the key did not exist
	conflict bool // the key existed, or had another revision
	value    string
	revision int64
}

type registerState struct {
	exists   bool
	value    string
	revision int64 // of the newest version, also after a delete
}

var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			key := op.Input.(registerInput).key
			byKey[key] = append(byKey[key], op)
		}
		var partitions [][]porcupine.Operation
		for _, ops := range byKey {
			partitions = append(partitions, ops)
		}
		return partitions
	},
	Init: func() any { return registerState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(registerState), input.(registerInput), output.(registerOutput)
		switch in.op {
		case "get":
			if !s.exists {
				return out.missing, s
			}
			return out.ok && out.value == s.value && out.revision == s.revision, s
		case "create":
			if s.exists {
				return out.conflict, s
			}
			return out.ok && out.revision > s.revision, registerState{exists: true, value: in.value, revision: out.revision}
		case "update", "delete":
			switch {
			case !s.exists:
				return out.missing, s
			case s.revision != in.expect:
				return out.conflict, s
			case in.op == "delete":
				return out.ok, registerState{revision: s.revision}
			default:
				return out.ok && out.revision > s.revision, registerState{exists: true, value: in.value, revision: out.revision}
			}
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(registerInput), output.(registerOutput)
		return fmt.Sprintf("%s(%s, %q, expect %d) -> %+v", in.op, in.key, in.value, in.expect, out)
	},
}

// TestHistoryIsLinearizable runs concurrent creates, compare-and-swap updates and
// deletes and gets on a few keys and checks the recorded history with porcupine:
// there is an order of the operations, within their call and return times, in
// which every key behaves as a register with compare-and-swap on its revision.
func TestHistoryIsLinearizable(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			const clients, opsPerClient, keys = 8, 250, 4
			start := time.Now()
			var mu sync.Mutex
			var history []porcupine.Operation
			var wg sync.WaitGroup
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					seen := map[string]int64{} // the revisions this client last saw
					for n := range opsPerClient {
						key := fmt.Sprintf("/pods/ns/k%d", rand.IntN(keys))
						in := registerInput{op: []string{"get", "create", "update", "update", "delete"}[rand.IntN(5)], key: key, value: fmt.Sprintf("c%d-%d", c, n), expect: seen[key]}
						call := time.Since(start).Nanoseconds()
						out := apply(t, s, in)
						ret := time.Since(start).Nanoseconds()
						if out.revision > 0 {
							seen[key] = out.revision
						}
						mu.Lock()
						history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			result, info := porcupine.CheckOperationsVerbose(registerModel, history, time.Minute)
			if result != porcupine.Ok {
				path := filepath.Join(os.TempDir(), fmt.Sprintf("warren-linearizability-%s-%d.html", dialect, time.Now().UnixNano()))
				if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
					t.Logf("writing the visualization: %v", err)
				}
				t.Fatalf("the history of %d operations is %v; its visualization: %s", len(history), result, path)
			}
		})
	}
}

// apply runs one operation on the store and says what it returned.
func apply(t *testing.T, s *Store, in registerInput) registerOutput {
	ctx := context.Background()
	pod := &example.Pod{}
	var err error
	switch in.op {
	case "get":
		err = s.Get(ctx, in.key, storage.GetOptions{}, pod)
	case "create":
		obj := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: filepath.Base(in.key), Namespace: "ns", Annotations: map[string]string{"v": in.value}}}
		err = s.Create(ctx, in.key, obj, pod, 0)
	case "update":
		rv := strconv.FormatInt(in.expect, 10)
		err = s.GuaranteedUpdate(ctx, in.key, pod, false, &storage.Preconditions{ResourceVersion: &rv},
			storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
				obj.(*example.Pod).Annotations = map[string]string{"v": in.value}
				return obj, nil
			}), nil)
	case "delete":
		rv := strconv.FormatInt(in.expect, 10)
		err = s.Delete(ctx, in.key, pod, &storage.Preconditions{ResourceVersion: &rv}, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
		if err == nil {
			return registerOutput{ok: true}
		}
	}
	switch {
	case err == nil:
		revision, _ := strconv.ParseInt(pod.ResourceVersion, 10, 64)
		return registerOutput{ok: true, value: pod.Annotations["v"], revision: revision}
	case storage.IsNotFound(err):
		return registerOutput{missing: true}
	case storage.IsExist(err), storage.IsConflict(err), storage.IsInvalidObj(err): // a failed precondition is an invalid object
		return registerOutput{conflict: true}
	default:
		t.Errorf("%s %s: %v", in.op, in.key, err)
		return registerOutput{}
	}
}
