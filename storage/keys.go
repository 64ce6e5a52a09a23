package storage

import "strings"

// The layout of the keys of clustered resources, which the registry above
// builds and this package stores: <prefix>/<cluster>[/<namespace>]/<name>, the
// prefix being /<group>/<resource>. Every layer that puts a cluster into a key
// or reads one out of it does so here.

// ClusterKey returns the key under prefix, in cluster, of what rest names:
// "" (the whole cluster) or "/[<namespace>/]<name>".
func ClusterKey(prefix, cluster, rest string) string {
	return prefix + "/" + cluster + rest
}

// SplitClusterKey splits a key under prefix into cluster, namespace and name.
func SplitClusterKey(prefix, key string) (cluster, namespace, name string) {
	rest := strings.Trim(strings.TrimPrefix(key, prefix), "/")
	cluster, rest, _ = strings.Cut(rest, "/")
	namespace, name = splitName(rest)
	return cluster, namespace, name
}

// ClusterOf returns the cluster of key, a key of any clustered resource
// (/<group>/<resource>/<cluster>/…), or "" if key is none.
func ClusterOf(key string) string {
	segments := strings.SplitN(key, "/", 5)
	if len(segments) < 5 || segments[0] != "" {
		return ""
	}
	return segments[3]
}

// splitName splits "[<namespace>/]<name>".
func splitName(rest string) (namespace, name string) {
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		return rest[:i], rest[i+1:]
	}
	return "", rest
}
