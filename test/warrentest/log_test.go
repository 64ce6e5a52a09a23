package warrentest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestLogKeepsEveryWriteWhileRead writes lines from several goroutines, as a
// process's stdout and stderr do, while another reads the log: every read
// holds whole lines only, and the log ends with every line of every writer, in
// each writer's order.
func TestLogKeepsEveryWriteWhileRead(t *testing.T) {
	const writers, lines = 8, 2000
	log := &Log{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(log, "writer %d line %d\n", w, i)
			}
		})
	}
	written := make(chan struct{})
	read := make(chan struct{})
	var torn []string
	go func() {
		defer close(read)
		for {
			select {
			case <-written:
				return
			default:
			}
			if snapshot := log.String(); snapshot != "" && !strings.HasSuffix(snapshot, "\n") {
				torn = append(torn, snapshot[strings.LastIndex(snapshot, "\n")+1:])
			}
		}
	}()
	wg.Wait()
	close(written)
	<-read
	if len(torn) > 0 {
		t.Errorf("%d reads ended inside a write, e.g. %q", len(torn), torn[0])
	}

	next := make([]int, writers) // each writer's next line
	for _, line := range strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n") {
		var w, i int
		if _, err := fmt.Sscanf(line, "writer %d line %d", &w, &i); err != nil || w < 0 || w >= writers {
			t.Fatalf("line %q is not one that was written", line)
		}
		if i != next[w] {
			t.Fatalf("writer %d's line %d follows its line %d", w, i, next[w]-1)
		}
		next[w]++
	}
	for w, n := range next {
		if n != lines {
			t.Errorf("writer %d has %d lines in the log, want %d", w, n, lines)
		}
	}
}
