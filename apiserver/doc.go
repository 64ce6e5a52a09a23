// Package apiserver is warren's multi-cluster apiserver: one k8s.io/apiserver
// GenericAPIServer whose every request belongs to one logical cluster.
//
// Cluster routing (package logicalcluster) runs before every upstream filter, so
// authentication, authorization, admission and the registry all see the cluster
// in the request context; storage keys carry it, so one cluster's request can
// never read or write another's rows. Nothing is built per cluster: built-in
// handlers are shared, a cluster's CRDs (package crd) get handlers shared by
// spec and discovery and OpenAPI cached per cluster, and every per-cluster cache
// is bounded.
package apiserver
