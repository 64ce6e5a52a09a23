package flatlru

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// TestAgreesWithAnLRU: random gets, peeks, adds and removes over a few keys
// give the answers, and tell of the entries leaving, that simplelru does — through
// table growth, updates in place and not, and compactions.
func TestAgreesWithAnLRU(t *testing.T) {
	for _, size := range []int{1, 2, 7, 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(uint64(size), 1))
			var flatEvicted, refEvicted []string
			l := New(size, func(key string, value []byte) {
				flatEvicted = append(flatEvicted, key+"="+string(value))
			})
			ref, err := simplelru.NewLRU(size, func(key string, value string) {
				refEvicted = append(refEvicted, key+"="+value)
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 200_000 {
				key := fmt.Sprintf("k%d", rnd.IntN(3*size))
				switch op := rnd.IntN(10); {
				case op < 3:
					got, ok := l.Get(key)
					want, wantOK := ref.Get(key)
					if ok != wantOK || string(got) != want {
						t.Fatalf("op %d: Get(%s) = %q, %v; want %q, %v", i, key, got, ok, want, wantOK)
					}
				case op < 4:
					got, ok := l.Peek(key)
					want, wantOK := ref.Peek(key)
					if ok != wantOK || string(got) != want {
						t.Fatalf("op %d: Peek(%s) = %q, %v; want %q, %v", i, key, got, ok, want, wantOK)
					}
				case op < 8:
					value := strings.Repeat(string(rune('a'+rnd.IntN(26))), rnd.IntN(40))
					if got, want := l.Add(key, []byte(value)), ref.Add(key, value); got != want {
						t.Fatalf("op %d: Add(%s) evicted %v, want %v", i, key, got, want)
					}
				default:
					if got, want := l.Remove(key), ref.Remove(key); got != want {
						t.Fatalf("op %d: Remove(%s) = %v, want %v", i, key, got, want)
					}
				}
				if l.Len() != ref.Len() {
					t.Fatalf("op %d: Len() = %d, want %d", i, l.Len(), ref.Len())
				}
				if fmt.Sprint(flatEvicted) != fmt.Sprint(refEvicted) {
					t.Fatalf("op %d: evicted %q, want %q", i, flatEvicted, refEvicted)
				}
				flatEvicted, refEvicted = flatEvicted[:0], refEvicted[:0]
			}
		})
	}
}

// TestArenaStaysBounded: however often entries are rewritten, grown and
// removed, the arena holds at most about twice the live bytes.
func TestArenaStaysBounded(t *testing.T) {
	const size = 10_000
	l := New(size, nil)
	rnd := rand.New(rand.NewPCG(2, 3))
	live := func() int {
		n := 0
		for e := l.entries[0].next; e != 0; e = l.entries[e].next {
			n += int(l.entries[e].keyLen) + int(l.entries[e].valueLen)
		}
		return n
	}
	for i := range 1_000_000 {
		key := fmt.Sprintf("cluster-%d", rnd.IntN(2*size))
		if i%7 == 0 {
			l.Remove(key)
			continue
		}
		l.Add(key, bytes.Repeat([]byte{'v'}, 1+rnd.IntN(100)))
		if i%1000 == 0 && len(l.arena) > 2*live()+minGarbage+MaxEntry {
			t.Fatalf("after %d changes the arena holds %d bytes for %d live", i, len(l.arena), live())
		}
	}
	if l.Len() > size {
		t.Fatalf("Len() = %d, more than its size %d", l.Len(), size)
	}
}

// TestLongEntriesAreNotHeld: a value too long to hold replaces none, and
// removes the key's older value, which would otherwise be served as current.
func TestLongEntriesAreNotHeld(t *testing.T) {
	l := New(4, nil)
	l.Add("k", []byte("old"))
	l.Add("k", make([]byte, MaxEntry))
	if v, ok := l.Get("k"); ok {
		t.Fatalf("Get(k) = %q after a value too long to hold", v)
	}
	if l.Len() != 0 {
		t.Fatalf("Len() = %d, want 0", l.Len())
	}
}

// BenchmarkCompaction measures a compaction of a million live entries of a
// path index's size, which holds the LRU (and so the index) meanwhile: 68–82
// ms on this machine, mostly the new arena's fresh pages. Garbage comes from
// entries replaced by longer ones, removed, or evicted, so a full index that
// misses often pauses so every ~half a million misses.
func BenchmarkCompaction(b *testing.B) {
	const n = 1 << 20
	l := New(n, nil)
	value := bytes.Repeat([]byte{'v'}, 40)
	for i := range n {
		l.Add(fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15), value)
	}
	for i := 0; i < n; i += 2 { // use order unlike insertion order
		l.Get(fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15))
	}
	for b.Loop() {
		l.garbage = len(l.arena)
		l.compact()
	}
}
