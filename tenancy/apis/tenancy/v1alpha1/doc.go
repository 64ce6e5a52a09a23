// Package v1alpha1 is the API of tenancy.warren.dev/v1alpha1: Workspace, the
// user's handle of a logical cluster, stored in its parent, and WorkspaceType,
// the template new workspaces are made from.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.warren.tenancy.v1alpha1
// +groupName=tenancy.warren.dev
package v1alpha1
