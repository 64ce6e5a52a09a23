// Package apiserver is warren's multi-cluster apiserver: one k8s.io/apiserver
// GenericAPIServer whose every request belongs to one logical cluster.
//
// Cluster routing (package logicalcluster) runs before every upstream filter, so
// authentication, authorization, admission and the registry all see the cluster
// in the request context; registry keys carry it, so one cluster's request can
// never read or write another's rows. Nothing is built per cluster: handlers,
// discovery and OpenAPI are shared, and what is cached per cluster is bounded.
package apiserver
