package report

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// StartWarren builds warren and starts it for the benchmark name on storage,
// "sqlite" (a file of its own) or "postgres" (a shard schema of its own at
// pgURL); stop stops it and removes what it stored.
func StartWarren(ctx context.Context, name, storage, pgURL string) (s *warrentest.Process, stop func(), err error) {
	dir, err := os.MkdirTemp("", "warren-bench-"+name+"-")
	if err != nil {
		return nil, nil, err
	}
	var cleanup []func()
	stop = func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
	binary, err := warrentest.Build(ctx, dir)
	if err != nil {
		stop()
		return nil, nil, err
	}
	var args []string
	if storage == "postgres" {
		shard := "bench_" + name + "_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		args = []string{"--storage", pgURL, "--shard", shard}
		cleanup = append(cleanup, func() { _ = pgtest.DropSchema(context.Background(), pgURL, shard) })
	}
	if s, err = warrentest.StartProcess(binary, filepath.Join(dir, "data"), args...); err != nil {
		stop()
		return nil, nil, err
	}
	cleanup = append(cleanup, func() { _ = s.Stop() }) // a slow stop changes nothing measured
	return s, stop, nil
}
