package v1alpha1

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
)

// ContentResource is the subresource of workspaces whose "access" verb lets a
// user enter a workspace: RBAC of the parent grants it.
const ContentResource = "workspaces/content"

// AccessVerb is the verb on workspaces/content that lets a user enter a workspace.
const AccessVerb = "access"

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Workspace is a child logical cluster, seen from its parent: creating one makes
// the cluster, deleting one deletes the cluster with everything in it.
type Workspace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WorkspaceSpec   `json:"spec,omitempty"`
	Status WorkspaceStatus `json:"status,omitempty"`
}

// WorkspaceSpec is what a workspace is; it never changes once created.
type WorkspaceSpec struct {
	// Type is the workspace's type; the parent type's default child type if empty.
	// +optional
	Type corev1alpha1.TypeReference `json:"type,omitempty"`
	// Cluster is the name of the workspace's logical cluster, assigned on creation.
	// +optional
	Cluster string `json:"cluster,omitempty"`
}

// WorkspaceStatus is where a workspace is in its life.
type WorkspaceStatus struct {
	// Phase is Scheduling, Initializing, Ready or Terminating.
	// +optional
	Phase corev1alpha1.LogicalClusterPhase `json:"phase,omitempty"`
	// URL is the workspace's address: the server followed by /clusters/<path>.
	// +optional
	URL string `json:"URL,omitempty"`
	// Conditions say what the workspace waits for or why it is stuck.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// WorkspaceList is a list of Workspaces.
type WorkspaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Workspace `json:"items"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// WorkspaceType is a template for workspaces: where they may be created, what
// their children default to, and what they start with.
type WorkspaceType struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec WorkspaceTypeSpec `json:"spec,omitempty"`
}

// WorkspaceTypeSpec describes a workspace type.
type WorkspaceTypeSpec struct {
	// DefaultChildType is the type of a child workspace created without one;
	// universal if empty.
	// +optional
	DefaultChildType *corev1alpha1.TypeReference `json:"defaultChildType,omitempty"`
	// LimitAllowedChildren restricts the types of child workspaces; any if empty.
	// +optional
	LimitAllowedChildren *TypeSelector `json:"limitAllowedChildren,omitempty"`
	// LimitAllowedParents restricts the types of workspaces this type's
	// workspaces may be created in; any if empty.
	// +optional
	LimitAllowedParents *TypeSelector `json:"limitAllowedParents,omitempty"`
	// InitialNamespaces are made in every new workspace of the type, besides
	// "default".
	// +optional
	// +listType=set
	InitialNamespaces []string `json:"initialNamespaces,omitempty"`
	// InitialClusterRoleBindings are made in every new workspace of the type,
	// besides the one making its creator cluster-admin.
	// +optional
	// +listType=map
	// +listMapKey=name
	InitialClusterRoleBindings []InitialClusterRoleBinding `json:"initialClusterRoleBindings,omitempty"`
}

// TypeSelector selects workspace types.
type TypeSelector struct {
	// None selects no type at all.
	// +optional
	None bool `json:"none,omitempty"`
	// Types are the types selected.
	// +optional
	Types []corev1alpha1.TypeReference `json:"types,omitempty"`
}

// InitialClusterRoleBinding is a ClusterRoleBinding a new workspace starts with.
type InitialClusterRoleBinding struct {
	// Name is the binding's name.
	Name string `json:"name"`
	// ClusterRole is the name of the bound cluster role.
	ClusterRole string `json:"clusterRole"`
	// Subjects are the bound users, groups and service accounts.
	Subjects []rbacv1.Subject `json:"subjects"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// WorkspaceTypeList is a list of WorkspaceTypes.
type WorkspaceTypeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []WorkspaceType `json:"items"`
}
