package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the group of the API.
const GroupName = "core.warren.dev"

// SchemeGroupVersion is the group version of the API.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// AddToScheme registers the API's types.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &LogicalCluster{}, &LogicalClusterList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
