package robustness

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// input is an operation on one key.
type input struct {
	Kind     string `json:"kind"` // get, create, update, delete
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`
	ExpectRV string `json:"expect_rv,omitempty"`
}

// output is what the server answered; Outcome "unknown" means the operation may
// or may not have taken effect (a timeout, a 5xx, a connection lost mid-way).
type output struct {
	Outcome string `json:"outcome"` // ok, notfound, exists, conflict, unknown
	Value   string `json:"value,omitempty"`
	RV      string `json:"rv,omitempty"`
}

// register is one key's state: a versioned register with compare-and-swap on its
// resource version. rv is "" when a write of unknown outcome may have changed it.
type register struct {
	exists bool
	value  string
	rv     string
}

func (r register) matches(expect string) (yes, no bool) {
	if r.rv == "" {
		return true, true
	}
	return r.rv == expect, r.rv != expect
}

// step returns every state the register may be in after the operation.
func step(s register, in input, out output) []any {
	switch in.Kind {
	case "get":
		switch out.Outcome {
		case "notfound":
			return when(!s.exists, s)
		case "ok":
			return when(s.exists && s.value == out.Value && (s.rv == "" || s.rv == out.RV), register{true, out.Value, out.RV})
		}
		return []any{s}
	case "create":
		created := register{true, in.Value, out.RV}
		switch out.Outcome {
		case "ok":
			return when(!s.exists, created)
		case "exists":
			return when(s.exists, s)
		case "unknown":
			if !s.exists {
				return []any{s, register{true, in.Value, ""}}
			}
			return []any{s}
		}
	case "update":
		matches, differs := s.matches(in.ExpectRV)
		switch out.Outcome {
		case "ok":
			return when(s.exists && matches, register{true, in.Value, out.RV})
		case "conflict":
			return when(s.exists && differs, s)
		case "notfound":
			return when(!s.exists, s)
		case "unknown":
			if s.exists && matches {
				return []any{s, register{true, in.Value, ""}}
			}
			return []any{s}
		}
	case "delete":
		matches, differs := s.matches(in.ExpectRV)
		switch out.Outcome {
		case "ok":
			return when(s.exists && matches, register{})
		case "conflict":
			return when(s.exists && differs, s)
		case "notfound":
			return when(!s.exists, s)
		case "unknown":
			if s.exists && matches {
				return []any{s, register{}}
			}
			return []any{s}
		}
	}
	return nil
}

func when(ok bool, s register) []any {
	if ok {
		return []any{s}
	}
	return nil
}

// registers checks each key's history on its own.
var registers = &porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{register{}} },
	Step: func(state, in, out any) []any { return step(state.(register), in.(input), out.(output)) },
	DescribeOperation: func(in, out any) string {
		i, o := in.(input), out.(output)
		return fmt.Sprintf("%s(%s %s if rv=%s) -> %s %s@%s", i.Kind, i.Key, i.Value, i.ExpectRV, o.Outcome, o.Value, o.RV)
	},
	DescribeState: func(state any) string {
		s := state.(register)
		if !s.exists {
			return "absent"
		}
		return fmt.Sprintf("%s@%s", s.value, s.rv)
	},
}

var model = registers.ToModel()
