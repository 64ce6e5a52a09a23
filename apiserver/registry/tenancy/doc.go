// Package tenancy serves kcp's tenancy APIs with the types of
// github.com/kcp-dev/sdk: Workspaces and WorkspaceTypes (tenancy.kcp.io), and
// LogicalClusters and Shards (core.kcp.io). What a workspace is never changes
// once it is created (its type, logical cluster and URL); where it is in its
// life (status) is written by warren's lifecycle controller alone, and
// LogicalClusters are read-only to clients. Validation follows kcp's CRDs, with
// field paths.
package tenancy
