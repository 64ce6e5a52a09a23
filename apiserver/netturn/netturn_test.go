package netturn

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTakeWaitsForTheNetworkToBePolled keeps the only P's run queue from ever
// emptying, so that the scheduler polls the network only through sysmon, every
// 10 ms, and sends a byte to a reader before each turn. Without the turn's
// wait the reader would hardly ever have read it when the turn ended; with it,
// the poll that ends the turn readied the reader too, and the turn's yield
// lets it run first — but for the turns that end on a P's 61st schedule, when
// it takes from the global run queue first.
func TestTakeWaitsForTheNetworkToBePolled(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	server, client := connected(t)
	// The reader counts the bytes it read; between two it waits in the
	// poller for the next.
	var read atomic.Int64
	go func() {
		var b [1]byte
		for {
			if _, err := server.Read(b[:]); err != nil {
				return
			}
			read.Add(1)
		}
	}()
	// One byte first, so that the reader is in the poller when the turns
	// begin, with nothing left to read.
	if _, err := client.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	for read.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	turns := New(1)
	stop := busy()
	defer stop()
	const n = 100
	first := 0
	for i := range n {
		before := read.Load()
		if _, err := client.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		turns.Take()
		if read.Load() > before {
			first++
		}
		for read.Load() == before {
			runtime.Gosched()
		}
	}
	if first < n*9/10 {
		t.Fatalf("the reader had read its byte when %d of %d turns ended, want at least %d", first, n, n*9/10)
	}
}

// TestTurnsKeepTheirPipes takes many turns at once, and checks that every
// turn ends and that no more pipes stay open than Turns keeps.
func TestTurnsKeepTheirPipes(t *testing.T) {
	before := openFiles(t)
	const keep = 4
	turns := New(keep)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 50 {
				turns.Take()
			}
		})
	}
	wg.Wait()
	if kept, after := len(turns.free), openFiles(t); kept != keep || after > before+2*keep {
		t.Fatalf("%d pipes kept, %d files open after the turns against %d before: want %d pipes, at most %d files",
			kept, after, before, keep, before+2*keep)
	}
}

// busy keeps the run queue of the current P from emptying until stop is
// called.
func busy() (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !done.Load() {
				runtime.Gosched()
			}
		})
	}
	return func() {
		done.Store(true)
		wg.Wait()
	}
}

// connected returns both ends of a connection over a Unix socket, which,
// unlike TCP over the loopback interface, has the bytes written ready to be
// read when the write returns.
func connected(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "socket"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err = net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() {
		server.Close()
		client.Close()
	})
	return server, client
}

func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to count open files: %v", err)
	}
	return len(fds)
}

// BenchmarkTake is the CPU a turn costs a process with nothing else to run.
func BenchmarkTake(b *testing.B) {
	turns := New(1)
	for b.Loop() {
		turns.Take()
	}
}
