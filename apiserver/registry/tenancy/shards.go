package tenancy

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewShards returns the storage of shards: the registry of the servers that
// store logical clusters, kept in root, as kcp keeps it.
func NewShards(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	s := registry.NewStrategy(false)
	s.Prepare = func(obj, _ runtime.Object) {
		spec := &obj.(*corev1alpha1.Shard).Spec
		// kcp's CRD defaults them so.
		if spec.ExternalURL == "" {
			spec.ExternalURL = spec.BaseURL
		}
		if spec.VirtualWorkspaceURL == "" {
			spec.VirtualWorkspaceURL = spec.BaseURL
		}
	}
	s.Check = func(obj runtime.Object) field.ErrorList {
		if obj.(*corev1alpha1.Shard).Spec.BaseURL == "" {
			return field.ErrorList{field.Required(field.NewPath("spec", "baseURL"), "")}
		}
		return nil
	}
	return registry.NewREST(getter, registry.Resource{
		GroupResource: corev1alpha1.SchemeGroupVersion.WithResource("shards").GroupResource(),
		SingularName:  "shard",
		New:           func() runtime.Object { return &corev1alpha1.Shard{} },
		NewList:       func() runtime.Object { return &corev1alpha1.ShardList{} },
		Strategy:      s,
		Categories:    []string{"kcp"},
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.Column("Region", "string", "The region this shard is in"),
				registry.Column("URL", "string", "Type URL to directly connect to the shard"),
				registry.Column("External URL", "string", "The URL exposed in workspaces created on that shard"),
			},
			Cells: func(obj runtime.Object) []any {
				s := obj.(*corev1alpha1.Shard)
				return []any{s.Labels["region"], s.Spec.BaseURL, s.Spec.ExternalURL}
			},
		},
	})
}
