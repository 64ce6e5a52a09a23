package warrentest

import "sync"

// Log is the output of a process: the writer of its stdout and stderr, which
// may be read while the process writes. Every Write is kept whole, in the order
// the writes were made.
type Log struct {
	mu  sync.Mutex
	buf []byte
}

// Write appends p.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// String is everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
