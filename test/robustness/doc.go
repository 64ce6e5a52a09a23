// Package robustness drives a running warren (the real binary, on SQLite or
// PostgreSQL) with concurrent clients while it injects faults — kill -9 and
// restart, PostgreSQL restarts, terminated sessions, a stalled database — and
// checks the recorded history: linearizability of every key's operations
// (porcupine), the watch guarantees (ordered, unique, no gap, resumable,
// bookmarks never ahead) and durability of acknowledged writes.
//
// `make test` runs every scenario briefly; `make robustness DURATION=10m` runs
// each for DURATION and prints a summary table. A violation writes the history
// and an explanation under test/robustness/results/.
package robustness
