package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/golang-migrate/migrate/v4"
	"github.com/spf13/cobra"

	"github.com/warren-dev/warren/storage"
)

// migrateOptions say which shard's schema to migrate.
type migrateOptions struct {
	storage string
	shard   string
}

func newMigrateCommand() *cobra.Command {
	o := &migrateOptions{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Migrate a shard's database schema (warren start migrates up by itself)",
	}
	cmd.PersistentFlags().StringVar(&o.storage, "storage", ".warren/warren.db", "SQLite file or postgres:// URL of the shard")
	cmd.PersistentFlags().StringVar(&o.shard, "shard", storage.DefaultShard, "Postgres schema of the shard (ignored for SQLite)")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "up",
			Short: "Apply every migration not yet applied",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return o.run(cmd, func(m *migrate.Migrate) error { return ignoreNoChange(m.Up()) })
			},
		},
		&cobra.Command{
			Use:   "down [N]",
			Short: "Revert the last N migrations (all without N); for tests, never production",
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return o.run(cmd, func(m *migrate.Migrate) error { return ignoreNoChange(m.Down()) })
				}
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 {
					return fmt.Errorf("the number of migrations to revert must be positive, not %q", args[0])
				}
				return o.run(cmd, func(m *migrate.Migrate) error { return ignoreNoChange(m.Steps(-n)) })
			},
		},
		&cobra.Command{
			Use:   "version",
			Short: "Print the schema version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return o.run(cmd, func(m *migrate.Migrate) error {
					version, dirty, err := m.Version()
					if errors.Is(err, migrate.ErrNilVersion) {
						fmt.Fprintln(cmd.OutOrStdout(), "none")
						return nil
					}
					if err != nil {
						return err
					}
					if dirty {
						fmt.Fprintf(cmd.OutOrStdout(), "%d (dirty)\n", version)
					} else {
						fmt.Fprintln(cmd.OutOrStdout(), version)
					}
					return nil
				})
			},
		},
	)
	return cmd
}

func (o *migrateOptions) run(cmd *cobra.Command, fn func(*migrate.Migrate) error) error {
	return storage.Migrate(cmd.Context(), o.storage, o.shard, fn)
}

func ignoreNoChange(err error) error {
	if errors.Is(err, migrate.ErrNoChange) {
		return nil
	}
	return err
}
