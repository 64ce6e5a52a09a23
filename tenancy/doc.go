// Package tenancy makes logical clusters into a tree of workspaces, speaking
// kcp's API (tenancy.kcp.io, core.kcp.io) with the types of
// github.com/kcp-dev/sdk.
//
// A Workspace, stored in its parent, is the user's handle of a logical cluster;
// the LogicalCluster named "cluster" inside says what the cluster is (its path
// and type, in kcp's annotations; its owner) and where it is in its life. This
// package holds:
//
//   - paths (root:acme:team-a) and their resolution to logical clusters (Index,
//     Routing): a request names a workspace by path or by logical cluster name,
//     and it is looked up only once its caller is authenticated;
//   - entry (Access): who may send any request into a workspace, decided as kcp
//     decides it, by the verb "access" on "/" in the workspace's own RBAC; for
//     everyone but the installation's admins, a workspace that does not exist
//     and one they may not enter are refused alike;
//   - placement (Admission): a workspace's type defaults from its parent's, is
//     resolved up the tree, must be one its creator may use, and must allow,
//     and be allowed by, the parent's type, counting the types each extends;
//   - the lifecycle (Lifecycle): Scheduling → Initializing (the types' initial
//     namespaces and bindings, the creator made admin) → Ready, and on deletion
//     Terminating → children deleted → every stored object of the cluster
//     erased → the workspace released. One controller serves every cluster
//     through one wildcard watch; nothing is kept or run per workspace.
//
// Guarantees: root exists once Bootstrap returned; a workspace's logical
// cluster name, type and URL never change; a request is served only by a
// cluster whose LogicalCluster is Ready (reads also while Terminating); once a
// deleted workspace is gone, no object of its cluster (or of its children's)
// is stored.
package tenancy
