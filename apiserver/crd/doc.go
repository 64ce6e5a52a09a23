// Package crd serves CustomResourceDefinitions per logical cluster: each
// cluster's CRDs define its own custom resources, discovery and OpenAPI, and two
// clusters may define the same resource differently without seeing each other.
//
// It is built from the exported pieces of k8s.io/apiextensions-apiserver (the
// custom resource registry and strategy, structural schemas, defaulting,
// pruning, CEL validation, table conversion, conversion): upstream's handler
// looks CRDs up by name alone and cannot be reused per cluster.
//
// What it guarantees:
//   - A request sees only the CRDs of its own cluster; a cluster's view of its
//     CRDs is listed on first use, bounded in number, and dropped on any change
//     to them, so nothing is held for clusters without traffic.
//   - Stores and request scopes are built on first use per CRD spec (its hash)
//     and shared by every cluster whose CRD has that spec; the cluster comes from
//     the request, never from the built handler.
//   - One Controller, fed by a wildcard watch, accepts names, establishes CRDs
//     and deletes a deleted CRD's custom resources in every cluster.
package crd
