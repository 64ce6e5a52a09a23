// Package v1alpha1 is the API of core.warren.dev/v1alpha1: LogicalCluster, the
// singleton named "cluster" inside every logical cluster, which says what the
// cluster is (its path, the workspace owning it, its type) and where it is in
// its life.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.warren.core.v1alpha1
// +groupName=core.warren.dev
package v1alpha1
