// Package apiserver is warren's multi-cluster apiserver: one k8s.io/apiserver
// GenericAPIServer whose every request belongs to one logical cluster.
//
// It is built as k8s.io/sample-apiserver builds its server: Options (flags)
// complete and validate into a Config (options.go, config.go) that holds the
// Storage of every object — a shard of warren's SQL storage, or upstream's
// etcd3 store, one provider among others (storage.go) — and Complete().New()
// builds the APIs, the handler chain and the controllers (config.go), so a
// process may build one server per shard.
//
// Cluster routing (tenancy.Routing) runs before every upstream filter and the
// workspace is looked up once the caller is authenticated, so authentication,
// authorization, admission and the registry all see the cluster in the request
// context; storage keys carry it (storage.ClusterKey), so one cluster's request
// can never read or write another's rows. Nothing is built per cluster:
// built-in handlers are shared, a cluster's CRDs (package crd) get handlers
// shared by spec and discovery and OpenAPI cached per cluster, and every
// per-cluster cache is bounded.
package apiserver
