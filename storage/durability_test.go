package storage

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
)

// writerChild names the environment variables that make the test binary a writer
// process for TestAcknowledgedWritesSurviveKill.
const (
	writerChild        = "WARREN_TEST_WRITER_STORAGE"
	writerChildShard   = "WARREN_TEST_WRITER_SHARD"
	acknowledgedPrefix = "acknowledged "
)

func TestMain(m *testing.M) {
	if location := os.Getenv(writerChild); location != "" {
		os.Exit(writeUntilKilled(location, os.Getenv(writerChildShard)))
	}
	os.Exit(m.Run())
}

// writeUntilKilled creates pods from 16 goroutines and prints every acknowledged
// create with its resource version, until the process is killed.
func writeUntilKilled(location, shard string) int {
	ctx := context.Background()
	b, err := Open(ctx, Config{Storage: location, Shard: shard})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := b.NewStore(ResourceConfig{
		Codec:          apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion),
		NewFunc:        func() runtime.Object { return &example.Pod{} },
		NewListFunc:    func() runtime.Object { return &example.PodList{} },
		ResourcePrefix: "/pods/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				name := fmt.Sprintf("w%02d-%06d", w, n)
				pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
				stored := &example.Pod{}
				if err := s.Create(ctx, "/pods/ns/"+name, pod, stored, 0); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "%s%s %s\n", acknowledgedPrefix, name, stored.ResourceVersion)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return 1
}

// TestAcknowledgedWritesSurviveKill kills a process with SIGKILL in the middle of
// a burst of writes: every write it had acknowledged is there after a restart,
// with the resource version it was acknowledged with, and the revision sequence
// goes on after the highest of them. (It proves that a write is acknowledged only
// once committed; surviving a power loss rests on fsync at commit: Postgres's
// synchronous commit, SQLite's synchronous=FULL.)
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			location, shard := newShard(t, dialect)
			child := exec.Command(os.Args[0], "-test.run=^$")
			child.Env = append(os.Environ(), writerChild+"="+location, writerChildShard+"="+shard)
			stdout, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			child.Stderr = os.Stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			acknowledged := map[string]uint64{}
			lines := bufio.NewScanner(stdout)
			deadline := time.Now().Add(60 * time.Second)
			for len(acknowledged) < 2000 && lines.Scan() {
				name, rv, ok := strings.Cut(strings.TrimPrefix(lines.Text(), acknowledgedPrefix), " ")
				if !ok {
					continue
				}
				v, err := strconv.ParseUint(rv, 10, 64)
				if err != nil {
					t.Fatalf("child printed %q", lines.Text())
				}
				acknowledged[name] = v
				if time.Now().After(deadline) {
					break
				}
			}
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// Acknowledgements printed before the kill landed count too.
			for lines.Scan() {
				if name, rv, ok := strings.Cut(strings.TrimPrefix(lines.Text(), acknowledgedPrefix), " "); ok {
					v, _ := strconv.ParseUint(rv, 10, 64)
					acknowledged[name] = v
				}
			}
			_ = child.Wait()
			if len(acknowledged) < 100 {
				t.Fatalf("the writer acknowledged only %d writes before it was killed", len(acknowledged))
			}

			b, err := Open(context.Background(), Config{Storage: location, Shard: shard})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			s := podStore(t, b, nil)
			var highest uint64
			for name, rv := range acknowledged {
				pod := &example.Pod{}
				if err := s.Get(context.Background(), "/pods/ns/"+name, storage.GetOptions{}, pod); err != nil {
					t.Fatalf("acknowledged write %s (resource version %d) is lost: %v", name, rv, err)
				}
				if got, _ := strconv.ParseUint(pod.ResourceVersion, 10, 64); got != rv {
					t.Errorf("%s has resource version %d after the restart, acknowledged %d", name, got, rv)
				}
				highest = max(highest, rv)
			}
			current, err := b.CurrentRevision(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if uint64(current) < highest {
				t.Errorf("the current revision %d is behind the acknowledged %d", current, highest)
			}
			t.Logf("%d acknowledged writes survived SIGKILL; revision %d", len(acknowledged), current)
		})
	}
}
