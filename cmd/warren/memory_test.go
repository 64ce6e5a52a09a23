package main

import (
	"errors"
	"math"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/pflag"
)

// gcSettings returns the runtime's GOGC and memory limit.
func gcSettings() (int, int64) {
	percent := debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
}

// TestGCSettings: the defaults, the cgroup's limit, the environment and the
// flags each decide the runtime's settings where they should.
func TestGCSettings(t *testing.T) {
	percent, limit := gcSettings()
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
	noCgroup := func() (uint64, error) { return 0, memlimit.ErrNoLimit }
	cgroup := func(n uint64) func() (uint64, error) { return func() (uint64, error) { return n, nil } }
	for _, tc := range []struct {
		name        string
		env         map[string]string
		args        []string
		cgroup      func() (uint64, error)
		wantPercent int
		wantLimit   int64
		wantErr     bool
	}{
		{name: "defaults", cgroup: noCgroup, wantPercent: 400, wantLimit: 768 << 20},
		{name: "a cgroup allowing less", cgroup: cgroup(512 << 20), wantPercent: 400, wantLimit: 483183820},
		{name: "a cgroup allowing more", cgroup: cgroup(64 << 30), wantPercent: 400, wantLimit: 768 << 20},
		{name: "flags", args: []string{"--gc-percent=150", "--memory-limit=2Gi"}, cgroup: cgroup(512 << 20), wantPercent: 150, wantLimit: 2 << 30},
		{name: "no limit", args: []string{"--memory-limit=0"}, cgroup: cgroup(512 << 20), wantPercent: 400, wantLimit: math.MaxInt64},
		{name: "the environment", env: map[string]string{"GOGC": "77", "GOMEMLIMIT": "1GiB"}, cgroup: noCgroup, wantPercent: 77, wantLimit: 123},
		{name: "flags over the environment", env: map[string]string{"GOGC": "77", "GOMEMLIMIT": "1GiB"}, args: []string{"--gc-percent=300", "--memory-limit=1500Mi"}, cgroup: noCgroup, wantPercent: 300, wantLimit: 1500 << 20},
		{name: "cgroups unsupported", cgroup: func() (uint64, error) { return 0, memlimit.ErrCgroupsNotSupported }, wantPercent: 400, wantLimit: 768 << 20},
		{name: "a cgroup unreadable", cgroup: func() (uint64, error) { return 0, errors.New("permission denied") }, wantErr: true},
		{name: "a bad quantity", args: []string{"--memory-limit=lots"}, cgroup: noCgroup, wantErr: true},
		{name: "a negative quantity", args: []string{"--memory-limit=-1Gi"}, cgroup: noCgroup, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			// What the runtime took from the environment at start (the
			// environment variables set here came too late for it).
			debug.SetGCPercent(77)
			debug.SetMemoryLimit(123)
			o := newGCOptions()
			o.cgroupLimit = tc.cgroup
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.addFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.apply(fs)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p, l := gcSettings(); p != tc.wantPercent || l != tc.wantLimit {
				t.Errorf("GOGC %d, memory limit %d; want %d, %d", p, l, tc.wantPercent, tc.wantLimit)
			}
		})
	}
}
