// Package flatlru is a map from strings to byte strings holding at most a
// given number of entries, the least recently used first out, kept in memory
// that holds no pointers: the garbage collector never scans it, whatever its
// size. It is what lets a shard's path index hold a million clusters without
// the collector's work growing with them.
//
// Keys and values live in byte chunks of at most 1 MiB; entries are
// fixed-size records in a slice, chained in use order by their numbers; an
// open-addressing table of entry numbers finds a key by its hash, and the key
// itself is compared, so a hash collision costs a probe, never a wrong answer.
// Space freed by updates and removals is reclaimed a chunk at a time: once
// half a chunk is garbage, its live entries move to the chunk being filled
// and it is used again. So no change copies more than a chunk's worth of
// keys and values, however many the LRU holds; finding a chunk's entries
// reads the entries' slice (2–7 ms for a million, BenchmarkChurn), and the
// slice and the table still grow by doubling, as a map does.
//
// Unlike the byte caches that also avoid the collector (freecache, bigcache),
// it bounds entries rather than bytes, tells its owner of every eviction and
// updates an entry in place; the path index's correctness depends on the
// first two.
//
// An LRU is not safe for concurrent use.
package flatlru

import (
	"fmt"
	"hash/maphash"
	"math"
)

// LRU maps keys to values; see the package comment.
type LRU struct {
	size    int
	onEvict func(key string, value []byte)
	seed    maphash.Seed
	// entries[0] is the head of the use-ordered ring (next: most recent);
	// free chains unused entries through next.
	entries []entry
	free    uint32
	count   int
	// table holds entry numbers (0: empty) at the position of their hash,
	// or after it (linear probing); it is at most half full.
	table []uint32
	// chunks hold keys and values, appended to chunks[current]; garbage
	// counts each chunk's bytes no entry uses; empty chunks are to be filled
	// again.
	chunks  [][]byte
	garbage []int
	current int
	empty   []int
}

type entry struct {
	hash       uint64
	off        uint32 // of the key, followed by the value: chunk<<chunkBits | offset
	keyLen     uint16
	valueLen   uint16
	prev, next uint32
}

// MaxEntry is the most bytes a key and its value may take together.
const MaxEntry = math.MaxUint16

// unused marks, as its prev, an entry on the free list.
const unused = math.MaxUint32

// A chunk holds at most 1<<chunkBits bytes; an offset addresses
// 1<<(32-chunkBits) chunks, 4 GiB.
const (
	chunkBits = 20
	chunkSize = 1 << chunkBits
	maxChunks = 1 << (32 - chunkBits)
)

// New returns an LRU of at most size entries. onEvict, if not nil, is told of
// every entry that leaves, dropped for room or removed (as simplelru tells
// its callback), with a value valid only during the call; it must not use the
// LRU.
func New(size int, onEvict func(key string, value []byte)) *LRU {
	if size <= 0 || size >= math.MaxUint32/2 {
		panic(fmt.Sprintf("flatlru: size %d out of range", size))
	}
	return &LRU{
		size:    size,
		onEvict: onEvict,
		seed:    maphash.MakeSeed(),
		entries: make([]entry, 1, 1+min(size, 1024)),
		table:   make([]uint32, 8),
		current: -1,
	}
}

// Len is the number of entries held.
func (l *LRU) Len() int { return l.count }

// Get returns the value of key and marks it used. The slice is valid until the
// LRU next changes.
func (l *LRU) Get(key string) ([]byte, bool) {
	_, e := l.find(key, l.hash(key))
	if e == 0 {
		return nil, false
	}
	l.unlink(e)
	l.pushFront(e)
	return l.value(e), true
}

// Peek returns the value of key without marking it used. The slice is valid
// until the LRU next changes.
func (l *LRU) Peek(key string) ([]byte, bool) {
	_, e := l.find(key, l.hash(key))
	if e == 0 {
		return nil, false
	}
	return l.value(e), true
}

// Add sets the value of key and marks it used, dropping the least recently
// used entry if the LRU is full; it reports whether one was dropped. A key and
// value longer than MaxEntry together are not held (and any older value of
// key is removed).
func (l *LRU) Add(key string, value []byte) (evicted bool) {
	h := l.hash(key)
	pos, e := l.find(key, h)
	if len(key)+len(value) > MaxEntry {
		if e != 0 {
			l.remove(pos, e)
		}
		return false
	}
	if e != 0 {
		l.set(e, value)
		l.unlink(e)
		l.pushFront(e)
		return false
	}
	if l.count >= l.size {
		last := l.entries[0].prev
		l.remove(l.position(last), last)
		evicted = true
	}
	if 2*(l.count+1) > len(l.table) {
		l.grow()
	}
	e = l.alloc() // unused until assigned: no collection moves it
	off := place(l, key, value)
	l.entries[e] = entry{hash: h, off: off, keyLen: uint16(len(key)), valueLen: uint16(len(value))}
	pos, _ = l.find(key, h)
	l.table[pos] = e
	l.count++
	l.pushFront(e)
	return evicted
}

// Remove drops key, reporting whether it was held.
func (l *LRU) Remove(key string) bool {
	pos, e := l.find(key, l.hash(key))
	if e == 0 {
		return false
	}
	l.remove(pos, e)
	return true
}

func (l *LRU) hash(key string) uint64 { return maphash.String(l.seed, key) }

// record returns the key and value of e, together.
func (l *LRU) record(e uint32) []byte {
	x := &l.entries[e]
	start := x.off & (chunkSize - 1)
	end := start + uint32(x.keyLen) + uint32(x.valueLen)
	return l.chunks[x.off>>chunkBits][start:end:end]
}

func (l *LRU) key(e uint32) []byte { return l.record(e)[:l.entries[e].keyLen] }

func (l *LRU) value(e uint32) []byte { return l.record(e)[l.entries[e].keyLen:] }

// find returns the table position of key and its entry, or the empty position
// where it would go and 0.
func (l *LRU) find(key string, h uint64) (int, uint32) {
	mask := len(l.table) - 1
	for pos := int(h) & mask; ; pos = (pos + 1) & mask {
		e := l.table[pos]
		if e == 0 || l.entries[e].hash == h && string(l.key(e)) == key {
			return pos, e
		}
	}
}

// position returns the table position of e.
func (l *LRU) position(e uint32) int {
	mask := len(l.table) - 1
	pos := int(l.entries[e].hash) & mask
	for l.table[pos] != e {
		pos = (pos + 1) & mask
	}
	return pos
}

// set replaces the value of e, in place if it fits.
func (l *LRU) set(e uint32, value []byte) {
	x := &l.entries[e]
	if len(value) <= int(x.valueLen) {
		copy(l.value(e), value)
		shrunk := int(x.valueLen) - len(value)
		x.valueLen = uint16(len(value))
		l.freed(x.off, shrunk)
		return
	}
	// The record left is garbage at once (a collection of its chunk while
	// the new one is placed then counts it right), and its entry is marked
	// unused meanwhile, so that no collection moves it; its chunk is
	// collected, if it should be, once the entry has its new place.
	prev, left := x.prev, int(x.off>>chunkBits)
	l.garbage[left] += int(x.keyLen) + int(x.valueLen)
	x.prev = unused
	off := place(l, string(l.key(e)), value)
	x = &l.entries[e]
	x.off, x.valueLen, x.prev = off, uint16(len(value)), prev
	l.collect(left)
}

// place appends key and value to the chunk being filled of l, or to a new one
// if they do not fit, and returns their offset.
func place[K string | []byte](l *LRU, key K, value []byte) uint32 {
	n := len(key) + len(value)
	// Collecting the chunk left fills the new one, perhaps past another.
	for l.current < 0 || len(l.chunks[l.current])+n > chunkSize {
		left := l.current
		l.current = l.newChunk()
		if left >= 0 {
			l.collect(left)
		}
	}
	c := l.chunks[l.current]
	off := uint32(l.current)<<chunkBits | uint32(len(c))
	l.chunks[l.current] = append(append(c, key...), value...)
	return off
}

// newChunk returns an empty chunk's number, making one if none is.
func (l *LRU) newChunk() int {
	if n := len(l.empty); n > 0 {
		c := l.empty[n-1]
		l.empty = l.empty[:n-1]
		if l.chunks[c] == nil {
			l.chunks[c] = make([]byte, 0, 4096)
		}
		return c
	}
	if len(l.chunks) == maxChunks {
		panic("flatlru: 4 GiB of chunks (over 2 GiB of keys and values) in use")
	}
	// A chunk grows to its size as it fills, so a small LRU stays small.
	l.chunks = append(l.chunks, make([]byte, 0, 4096))
	l.garbage = append(l.garbage, 0)
	return len(l.chunks) - 1
}

// freed counts n bytes at off as garbage, and collects their chunk if that
// makes half of it garbage.
func (l *LRU) freed(off uint32, n int) {
	c := int(off >> chunkBits)
	l.garbage[c] += n
	l.collect(c)
}

// collect moves the live entries of chunk c, unless it is being filled or
// is not yet half garbage, to the chunk being filled, and marks it empty.
func (l *LRU) collect(c int) {
	if c == l.current || l.garbage[c] == 0 || 2*l.garbage[c] < len(l.chunks[c]) {
		return
	}
	for e := 1; e < len(l.entries); e++ {
		x := &l.entries[e]
		if x.prev == unused || int(x.off>>chunkBits) != c {
			continue
		}
		// Moving into the chunk being filled may start another; never c,
		// which is not empty yet.
		x.off = place(l, l.record(uint32(e)), nil)
	}
	// One empty chunk is kept to be filled again; the others' memory goes.
	if len(l.empty) == 0 {
		l.chunks[c] = l.chunks[c][:0]
	} else {
		l.chunks[c] = nil
	}
	l.garbage[c] = 0
	l.empty = append(l.empty, c)
}

// remove drops e, found at table position pos, and tells onEvict.
func (l *LRU) remove(pos int, e uint32) {
	if l.onEvict != nil {
		l.onEvict(string(l.key(e)), l.value(e))
	}
	l.unlink(e)
	off, n := l.entries[e].off, int(l.entries[e].keyLen)+int(l.entries[e].valueLen)
	l.entries[e] = entry{next: l.free, prev: unused}
	l.free = e
	l.count--
	// Close the gap, so that every entry stays reachable from its home
	// position without crossing an empty one (backward-shift deletion).
	mask := len(l.table) - 1
	hole := pos
	for next := (hole + 1) & mask; l.table[next] != 0; next = (next + 1) & mask {
		home := int(l.entries[l.table[next]].hash) & mask
		if (next-home)&mask >= (next-hole)&mask {
			l.table[hole] = l.table[next]
			hole = next
		}
	}
	l.table[hole] = 0
	l.freed(off, n)
}

func (l *LRU) alloc() uint32 {
	if e := l.free; e != 0 {
		l.free = l.entries[e].next
		return e
	}
	l.entries = append(l.entries, entry{prev: unused})
	return uint32(len(l.entries) - 1)
}

func (l *LRU) unlink(e uint32) {
	x := l.entries[e]
	l.entries[x.prev].next = x.next
	l.entries[x.next].prev = x.prev
}

func (l *LRU) pushFront(e uint32) {
	first := l.entries[0].next
	l.entries[e].prev, l.entries[e].next = 0, first
	l.entries[first].prev = e
	l.entries[0].next = e
}

// grow doubles the table.
func (l *LRU) grow() {
	old := l.table
	l.table = make([]uint32, 2*len(old))
	mask := len(l.table) - 1
	for _, e := range old {
		if e == 0 {
			continue
		}
		pos := int(l.entries[e].hash) & mask
		for l.table[pos] != 0 {
			pos = (pos + 1) & mask
		}
		l.table[pos] = e
	}
}
