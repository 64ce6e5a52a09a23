package flatlru

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

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
				checkGarbage(t, l)
			}
		})
	}
}

// TestChunksStayBounded: however often entries are rewritten, grown and
// removed, the chunks hold at most about twice the live bytes, and take at
// most about that much memory.
func TestChunksStayBounded(t *testing.T) {
	const size = 100_000
	l := New(size, nil)
	rnd := rand.New(rand.NewPCG(2, 3))
	for i := range 1_000_000 {
		key := fmt.Sprintf("cluster-%d", rnd.IntN(2*size))
		if i%7 == 0 {
			l.Remove(key)
		} else {
			l.Add(key, bytes.Repeat([]byte{'v'}, 1+rnd.IntN(100)))
		}
		if i%10_000 != 0 {
			continue
		}
		checkGarbage(t, l)
		live, used, held := 0, 0, 0
		for e := l.entries[0].next; e != 0; e = l.entries[e].next {
			live += len(l.record(e))
		}
		for _, c := range l.chunks {
			used, held = used+len(c), held+cap(c)
		}
		if used > 2*live+chunkSize || held > 2*live+3*chunkSize {
			t.Fatalf("after %d changes the chunks use %d bytes and hold %d for %d live", i, used, held, live)
		}
	}
	if l.Len() > size {
		t.Fatalf("Len() = %d, more than its size %d", l.Len(), size)
	}
}

// TestGrowingEntriesAcrossChunks: an entry rewritten longer, again and again
// across many chunks, keeps each chunk's garbage exact — also when finding
// room for its new value collects the chunk its old value is in.
func TestGrowingEntriesAcrossChunks(t *testing.T) {
	l := New(2, nil)
	for i := range 100_000 {
		l.Add("k", bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%1000))
		checkGarbage(t, l)
	}
	if v, ok := l.Get("k"); !ok || len(v) != 1+99_999%1000 || v[0] != byte('a'+99_999%26) {
		t.Fatalf("Get(k) = %.10q…, %v", v, ok)
	}
}

// checkGarbage fails the test unless each chunk's garbage is exactly the
// bytes no entry uses, no chunk is over its size, and the empty chunks are
// each listed once, empty, and not being filled.
func checkGarbage(t *testing.T, l *LRU) {
	t.Helper()
	live := make([]int, len(l.chunks))
	for e := l.entries[0].next; e != 0; e = l.entries[e].next {
		live[l.entries[e].off>>chunkBits] += len(l.record(e))
	}
	for c, chunk := range l.chunks {
		if l.garbage[c] != len(chunk)-live[c] || len(chunk) > chunkSize {
			t.Fatalf("chunk %d counts %d bytes of garbage, holds %d with %d live", c, l.garbage[c], len(chunk), live[c])
		}
	}
	listed := map[int]bool{}
	for _, c := range l.empty {
		if listed[c] || c == l.current || len(l.chunks[c]) > 0 {
			t.Fatalf("chunk %d listed empty (again: %v) while being filled (%v) or holding %d bytes", c, listed[c], c == l.current, len(l.chunks[c]))
		}
		listed[c] = true
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

// BenchmarkChurn replaces entries of a full LRU of a million, a path
// index's size, and reports the longest change: what a lookup may wait
// behind. (Compacting one arena of the same entries held it 68–82 ms.)
func BenchmarkChurn(b *testing.B) {
	const n = 1 << 20
	l := New(n, nil)
	key := func(i int) string { return fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15) }
	value := bytes.Repeat([]byte{'v'}, 40)
	for i := range n {
		l.Add(key(i), value)
	}
	var longest time.Duration
	i := n
	for b.Loop() {
		start := time.Now()
		l.Add(key(i), value[:i%41]) // evicts one
		longest = max(longest, time.Since(start))
		i++
	}
	b.ReportMetric(float64(longest.Microseconds()), "longest-µs")
}
