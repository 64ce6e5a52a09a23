package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Name is the name of the LogicalCluster object in every logical cluster.
const Name = "cluster"

// LogicalClusterPhase is where a logical cluster (and its workspace) is in its life.
type LogicalClusterPhase string

const (
	// Scheduling: the workspace exists, its logical cluster does not yet.
	Scheduling LogicalClusterPhase = "Scheduling"
	// Initializing: the logical cluster exists and receives its type's initial
	// objects; it serves no requests yet.
	Initializing LogicalClusterPhase = "Initializing"
	// Ready: the logical cluster serves requests.
	Ready LogicalClusterPhase = "Ready"
	// Terminating: the workspace is being deleted, children first, then every
	// object of its logical cluster; it serves no requests.
	Terminating LogicalClusterPhase = "Terminating"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// LogicalCluster describes the logical cluster it is stored in. There is one,
// named "cluster", in every logical cluster; warren creates and deletes it with
// the cluster's workspace.
type LogicalCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LogicalClusterSpec   `json:"spec,omitempty"`
	Status LogicalClusterStatus `json:"status,omitempty"`
}

// LogicalClusterSpec is what a logical cluster is; it never changes.
type LogicalClusterSpec struct {
	// Path is the cluster's address in the tree of workspaces, e.g. root:acme:team-a.
	Path string `json:"path"`
	// Owner is the workspace whose content this cluster is; root has none.
	// +optional
	Owner *LogicalClusterOwner `json:"owner,omitempty"`
	// Type is the workspace type the cluster was initialised from.
	Type TypeReference `json:"type"`
}

// LogicalClusterOwner names the workspace owning a logical cluster and the user
// who created it, who may always enter it.
type LogicalClusterOwner struct {
	// Cluster is the logical cluster holding the workspace (the parent).
	Cluster string `json:"cluster"`
	// Name is the workspace's name in its parent.
	Name string `json:"name"`
	// UID is the workspace's UID.
	UID string `json:"uid"`
	// User is the name of the user who created the workspace.
	// +optional
	User string `json:"user,omitempty"`
}

// TypeReference names a workspace type: a WorkspaceType object of that name in
// the workspace at path.
type TypeReference struct {
	// Name is the WorkspaceType's name.
	Name string `json:"name"`
	// Path is the path of the workspace holding the WorkspaceType; root if empty.
	// +optional
	Path string `json:"path,omitempty"`
}

// LogicalClusterStatus is where a logical cluster is in its life.
type LogicalClusterStatus struct {
	// Phase is Initializing, Ready or Terminating.
	// +optional
	Phase LogicalClusterPhase `json:"phase,omitempty"`
	// Shard is the name of the shard storing the cluster.
	// +optional
	Shard string `json:"shard,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// LogicalClusterList is a list of LogicalClusters.
type LogicalClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []LogicalCluster `json:"items"`
}
