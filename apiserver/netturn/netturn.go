// Package netturn lets a goroutine wait for the Go scheduler's next look at
// the network.
//
// Go's scheduler polls the network for connections that became ready when one
// of its Ps finds nothing else to run, and otherwise only through sysmon, every
// 10 ms. On a server whose CPUs stay busy, a request that arrived can so sit
// unread in its socket for up to that long, whatever order priority and
// fairness would have served it in. A turn is a wait for that poll: Take parks
// its goroutine in the poller on a pipe that another goroutine then writes, so
// it runs again only after a poll, with which every goroutine the poll found
// ready (a connection that received a request) went to the run queue too; it
// then yields, so that those run first — except when its P happens to take
// from the global run queue first, as it does one schedule in 61. With several
// Ps the writer may run on another before Take parks, and the turn is short:
// an idle P polls at once anyway. A turn costs a goroutine and two system
// calls on a pipe (BenchmarkTake); pipes are kept for the next turn, up to a
// bound.
package netturn

import (
	"os"
	"runtime"
)

// Turns hands out turns. Its zero value is not usable; use New.
type Turns struct {
	// free holds pipes for the next turns; a pipe is empty when it is here.
	free chan *pipe
}

// New returns Turns that keeps up to keep pipes (two file descriptors each)
// between turns: as many as are taken at once in the steady state. The pipes
// of Turns no longer used are closed by the collector, as any unreachable
// *os.File.
func New(keep int) *Turns {
	return &Turns{free: make(chan *pipe, keep)}
}

// Take waits for the scheduler's next poll of the network, and yields. The
// wait is what the scheduler takes to find a P with nothing to run, bounded by
// sysmon's poll every 10 ms. A process that can open no pipe (out of file
// descriptors) gets no turn: Take returns at once.
func (t *Turns) Take() {
	var p *pipe
	select {
	case p = <-t.free:
	default:
		r, w, err := os.Pipe()
		if err != nil {
			return
		}
		p = &pipe{r: r, w: w}
	}
	// The byte is written by a goroutine that runs once this one is parked
	// in the poller waiting to read it (a new goroutine runs next on its P),
	// so the read returns from a poll made after it.
	go p.ring()
	_, err := p.r.Read(p.in[:])
	if err != nil {
		p.close()
		return
	}
	select {
	case t.free <- p:
	default:
		p.close()
	}
	// A poll hands its finds to the run queue last found first, so the
	// connections that became ready before the pipe may still be waiting
	// there: let them run first.
	runtime.Gosched()
}

// pipe is what a turn waits on: the reading end is in the poller, the
// writing end wakes it.
type pipe struct {
	r, w *os.File
	// in is where the turn reads the byte, out the byte ring writes.
	in, out [1]byte
}

// ring writes the byte the turn waits for; if it cannot, it closes the
// reading end so that the turn ends with an error instead of never.
func (p *pipe) ring() {
	if _, err := p.w.Write(p.out[:]); err != nil {
		p.r.Close()
	}
}

func (p *pipe) close() {
	p.r.Close()
	p.w.Close()
}
