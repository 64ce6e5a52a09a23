// Package tenancy makes logical clusters into a tree of workspaces.
//
// A Workspace, stored in its parent, is the user's handle of a logical cluster;
// the LogicalCluster named "cluster" inside says what the cluster is (its path,
// its owner, its type) and where it is in its life. This package holds:
//
//   - paths (root:acme:team-a) and their resolution to logical clusters (Index,
//     Routing): a request names a workspace by path or by logical cluster name,
//     and an unknown one is 404 for everyone;
//   - the lifecycle (Lifecycle): Scheduling → Initializing (the type's initial
//     namespaces and bindings, the creator made admin) → Ready, and on deletion
//     Terminating → children deleted → every stored object of the cluster
//     erased → the workspace released. One controller serves every cluster
//     through one wildcard watch; nothing is kept or run per workspace;
//   - placement (Admission): a workspace's type defaults from its parent's and
//     must allow, and be allowed by, the parent's type;
//   - entry (Access): who may send any request into a workspace, decided by the
//     parent's RBAC (verb "access" on workspaces/content), before the
//     workspace's own RBAC decides what they may do.
//
// Guarantees: root exists once Bootstrap returned; a workspace's logical
// cluster name and type never change; a request is served only by a cluster
// whose LogicalCluster is Ready (reads also while Terminating); once a deleted
// workspace is gone, no object of its cluster (or of its children's) is stored.
package tenancy
