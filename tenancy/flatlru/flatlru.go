// Package flatlru is a map from strings to byte strings holding at most a
// given number of entries, the least recently used first out, kept in memory
// that holds no pointers: the garbage collector never scans it, whatever its
// size. It is what lets a shard's path index hold a million clusters without
// the collector's work growing with them.
//
// Keys and values live in one byte arena; entries are fixed-size records in a
// slice, chained in use order by their numbers; an open-addressing table of
// entry numbers finds a key by its hash, and the key itself is compared, so a
// hash collision costs a probe, never a wrong answer. Space freed by updates
// and removals is reclaimed by copying the live entries into a new arena once
// it is most of the old one.
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
	table   []uint32
	arena   []byte
	garbage int
}

type entry struct {
	hash       uint64
	off        uint32 // of the key, followed by the value, in arena
	keyLen     uint16
	valueLen   uint16
	prev, next uint32
}

// MaxEntry is the most bytes a key and its value may take together.
const MaxEntry = math.MaxUint16

// minGarbage is the least garbage worth a compaction.
const minGarbage = 1 << 16

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
		l.compact()
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
	e = l.alloc()
	l.entries[e] = entry{hash: h, off: uint32(len(l.arena)), keyLen: uint16(len(key)), valueLen: uint16(len(value))}
	l.arena = append(append(l.arena, key...), value...)
	l.checkArena()
	pos, _ = l.find(key, h)
	l.table[pos] = e
	l.count++
	l.pushFront(e)
	l.compact()
	return evicted
}

// Remove drops key, reporting whether it was held.
func (l *LRU) Remove(key string) bool {
	pos, e := l.find(key, l.hash(key))
	if e == 0 {
		return false
	}
	l.remove(pos, e)
	l.compact()
	return true
}

func (l *LRU) hash(key string) uint64 { return maphash.String(l.seed, key) }

func (l *LRU) key(e uint32) []byte {
	x := &l.entries[e]
	return l.arena[x.off : x.off+uint32(x.keyLen)]
}

func (l *LRU) value(e uint32) []byte {
	x := &l.entries[e]
	start := x.off + uint32(x.keyLen)
	return l.arena[start : start+uint32(x.valueLen) : start+uint32(x.valueLen)]
}

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
		copy(l.arena[x.off+uint32(x.keyLen):], value)
		l.garbage += int(x.valueLen) - len(value)
		x.valueLen = uint16(len(value))
		return
	}
	key := l.key(e)
	l.garbage += len(key) + int(x.valueLen)
	off := len(l.arena)
	l.arena = append(append(l.arena, key...), value...)
	l.checkArena()
	x = &l.entries[e]
	x.off, x.valueLen = uint32(off), uint16(len(value))
}

// checkArena panics if the arena outgrew what an entry's offset can address:
// bounded entries of bounded size, compacted, cannot get there.
func (l *LRU) checkArena() {
	if len(l.arena) > math.MaxUint32 {
		panic("flatlru: arena beyond 4 GiB")
	}
}

// remove drops e, found at table position pos, and tells onEvict.
func (l *LRU) remove(pos int, e uint32) {
	if l.onEvict != nil {
		l.onEvict(string(l.key(e)), l.value(e))
	}
	l.unlink(e)
	l.garbage += int(l.entries[e].keyLen) + int(l.entries[e].valueLen)
	l.entries[e] = entry{next: l.free}
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
}

func (l *LRU) alloc() uint32 {
	if e := l.free; e != 0 {
		l.free = l.entries[e].next
		return e
	}
	l.entries = append(l.entries, entry{})
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

// compact copies the live entries into a new arena once garbage is most of
// the old one: each byte is copied at most once per byte freed.
func (l *LRU) compact() {
	if l.garbage < minGarbage || 2*l.garbage < len(l.arena) {
		return
	}
	arena := make([]byte, 0, len(l.arena)-l.garbage+len(l.arena)/8)
	for e := l.entries[0].next; e != 0; e = l.entries[e].next {
		x := &l.entries[e]
		n := uint32(x.keyLen) + uint32(x.valueLen)
		off := len(arena)
		arena = append(arena, l.arena[x.off:x.off+n]...)
		x.off = uint32(off)
	}
	l.arena, l.garbage = arena, 0
}
