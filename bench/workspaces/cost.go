package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warren-dev/warren/bench/report"
	"github.com/warren-dev/warren/test/warrentest"
)

// creationCost is what making workspaces cost, over the spans the run spent
// creating (checkpoints' samples left out), per workspace made.
type creationCost struct {
	Workspaces int `json:"workspaces"`
	// WarrenCPUMs is the server's CPU time; Transactions, Writes and
	// WriteBatches what it ran in its database (each read statement is a
	// transaction, and so is each batch of writes), all from its /metrics.
	WarrenCPUMs  float64 `json:"warren_cpu_ms"`
	Transactions float64 `json:"transactions"`
	Writes       float64 `json:"writes"`
	WriteBatches float64 `json:"write_batches"`
	// PostgresCPUMs is the CPU time of the local PostgreSQL's processes (of
	// those that live through a span, as warren's connections do), when the
	// benchmark started warren on it.
	PostgresCPUMs float64 `json:"postgres_cpu_ms,omitempty"`
}

// usage is a reading of the meters.
type usage struct {
	warren, postgres                   time.Duration
	transactions, writes, writeBatches float64
}

// meter reads what the server has used, and with postgres the local
// PostgreSQL's CPU time.
type meter struct {
	b        *bench
	postgres bool
	// spent adds up the spans measured, in which made workspaces were made.
	spent usage
	made  int
}

func (m *meter) read(ctx context.Context) (usage, error) {
	var u usage
	if m.postgres {
		var err error
		if u.postgres, err = postgresCPU(); err != nil {
			return u, err
		}
	}
	v, err := report.Metrics(ctx, m.b.http, m.b.workspace.Base+"/metrics", "process_cpu_seconds_total",
		"warren_storage_transactions_total", "warren_storage_write_batch_size_sum", "warren_storage_write_batch_size_count")
	if err != nil {
		return u, err
	}
	u.warren = time.Duration(v["process_cpu_seconds_total"] * float64(time.Second))
	u.transactions = v["warren_storage_transactions_total"]
	u.writes, u.writeBatches = v["warren_storage_write_batch_size_sum"], v["warren_storage_write_batch_size_count"]
	return u, nil
}

// add counts the span from before to after, in which made workspaces were made.
func (m *meter) add(before, after usage, made int) {
	m.spent.warren += after.warren - before.warren
	m.spent.postgres += after.postgres - before.postgres
	m.spent.transactions += after.transactions - before.transactions
	m.spent.writes += after.writes - before.writes
	m.spent.writeBatches += after.writeBatches - before.writeBatches
	m.made += made
}

// cost is the spans' usage per workspace; nil before any was made.
func (m *meter) cost() *creationCost {
	if m.made == 0 {
		return nil
	}
	n := float64(m.made)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	c := &creationCost{Workspaces: m.made, WarrenCPUMs: ms(m.spent.warren),
		Transactions: m.spent.transactions / n, Writes: m.spent.writes / n, WriteBatches: m.spent.writeBatches / n}
	if m.postgres {
		c.PostgresCPUMs = ms(m.spent.postgres)
	}
	return c
}

// postgresCPU is the CPU time of this machine's running PostgreSQL processes.
func postgresCPU() (time.Duration, error) {
	comms, err := filepath.Glob("/proc/[0-9]*/comm")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, comm := range comms {
		name, err := os.ReadFile(comm)
		if err != nil || strings.TrimSpace(string(name)) != "postgres" {
			continue // gone meanwhile, or another program
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(comm)))
		if err != nil {
			continue
		}
		if cpu, err := warrentest.CPU(pid); err == nil {
			total += cpu
		}
	}
	return total, nil
}
