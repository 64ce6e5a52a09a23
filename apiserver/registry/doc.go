// Package registry builds the REST storage of warren's resources on
// k8s.io/apiserver's generic registry.
//
// Every key the registry hands to storage is /<group>/<resource>/<cluster>/
// [<namespace>/]<name>, the cluster taken from the request context; a request
// without a cluster gets no key at all, so nothing can be read or written outside
// a logical cluster. The wildcard cluster yields the key range of every cluster,
// for lists and watches only.
//
// One folder per resource below holds its strategy (validation, defaulting on
// create and update) and its storage; what they share (keys, the strategy shape,
// tables) is here.
package registry
