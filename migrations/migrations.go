// Package migrations holds warren's database schema as golang-migrate SQL files, one
// folder per dialect (postgres, sqlite), embedded into the binary.
//
// Files are numbered and come in up/down pairs. Production only ever migrates up; the
// down files exist so that CI can prove every migration reversible.
package migrations

import (
	"embed"
	"fmt"

	"github.com/golang-migrate/migrate/v4/source"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Source returns the migrations of one dialect ("postgres" or "sqlite").
func Source(dialect string) (source.Driver, error) {
	switch dialect {
	case "postgres", "sqlite":
		return iofs.New(files, dialect)
	default:
		return nil, fmt.Errorf("no migrations for dialect %q", dialect)
	}
}
