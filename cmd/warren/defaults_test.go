package main

import "testing"

// TestStartAndMigrateServeOneShard: `warren migrate` without --shard migrates
// the schema `warren start` without --shard serves, and that is the root shard.
func TestStartAndMigrateServeOneShard(t *testing.T) {
	root := newRootCommand()
	defaults := map[string]string{}
	for _, name := range []string{"start", "migrate"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		flag := cmd.Flags().Lookup("shard")
		if flag == nil {
			flag = cmd.PersistentFlags().Lookup("shard")
		}
		if flag == nil {
			t.Fatalf("warren %s has no --shard", name)
		}
		defaults[name] = flag.DefValue
	}
	if defaults["start"] != defaults["migrate"] || defaults["start"] != "root" {
		t.Errorf("default shards: start %q, migrate %q; want both root", defaults["start"], defaults["migrate"])
	}
}
