package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The garbage collector's defaults. Go's own (GOGC=100, no limit) collect
// every time the heap doubles: with the small live heap of a warren process
// (tens of MiB, its caches bounded) that is every few hundred requests, and a
// request that meets a collection pays for marking in its latency (bench/api's
// list-1 p99 3.9 → 2.3 ms, CPU per request −10–20% at 400). A higher target is
// held to a soft memory limit so that a shard's footprint stays bounded as its
// live heap grows (a million workspaces: ~250 MiB live).
const (
	defaultGCPercent = 400
	// defaultMemoryLimit applies unless the cgroup allows less.
	defaultMemoryLimit = 768 << 20
	// cgroupShare is the part of the cgroup's memory limit the Go runtime may
	// aim for, leaving room for what it does not count (page tables, files).
	cgroupShare = 0.9
)

// gcOptions are the Go runtime's garbage-collection settings of a serving
// command. GOGC and GOMEMLIMIT in the environment win over the defaults; a
// flag given on the command line wins over both.
type gcOptions struct {
	percent int
	limit   string
	// cgroupLimit returns the memory limit of the process's cgroup
	// (memlimit.FromCgroup; an error when there is none).
	cgroupLimit func() (uint64, error)
}

func newGCOptions() *gcOptions {
	return &gcOptions{percent: defaultGCPercent, cgroupLimit: memlimit.FromCgroup}
}

func (o *gcOptions) addFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.percent, "gc-percent", o.percent, "the garbage collector's target (GOGC): a collection starts when the heap has grown by this percentage of what the last one kept; negative: only --memory-limit starts one")
	fs.StringVar(&o.limit, "memory-limit", o.limit, "a soft limit on the process's memory (GOMEMLIMIT), a quantity (768Mi, 4Gi): near it the collector runs as often as it must, whatever --gc-percent says (with up to half the CPU, so keep it above the live heap, go_memstats_heap_inuse_bytes after a collection); 0 means none (default 768Mi, or 90% of the cgroup's memory limit if that is less)")
}

// apply sets the runtime's settings from the flags of fs.
func (o *gcOptions) apply(fs *pflag.FlagSet) error {
	if fs.Changed("gc-percent") || os.Getenv("GOGC") == "" {
		debug.SetGCPercent(o.percent)
	}
	if fs.Changed("memory-limit") || os.Getenv("GOMEMLIMIT") == "" {
		limit, err := o.memoryLimit()
		if err != nil {
			return err
		}
		debug.SetMemoryLimit(limit)
	}
	return nil
}

// memoryLimit returns the limit --memory-limit asks for, or the default.
func (o *gcOptions) memoryLimit() (int64, error) {
	if o.limit == "" {
		limit := int64(defaultMemoryLimit)
		cg, err := o.cgroupLimit()
		switch {
		case err == nil && cg < math.MaxInt64:
			limit = min(limit, int64(float64(cg)*cgroupShare))
		case err == nil, errors.Is(err, memlimit.ErrNoLimit), errors.Is(err, memlimit.ErrNoCgroup),
			errors.Is(err, memlimit.ErrCgroupsNotSupported), errors.Is(err, fs.ErrNotExist):
		default:
			return 0, fmt.Errorf("reading the cgroup's memory limit (give --memory-limit instead): %w", err)
		}
		return limit, nil
	}
	q, err := resource.ParseQuantity(o.limit)
	if err != nil {
		return 0, fmt.Errorf("--memory-limit %q: %w", o.limit, err)
	}
	limit, ok := q.AsInt64()
	if !ok || limit < 0 {
		return 0, fmt.Errorf("--memory-limit %q: not a number of bytes", o.limit)
	}
	if limit == 0 {
		return math.MaxInt64, nil // the runtime's "no limit"
	}
	return limit, nil
}
