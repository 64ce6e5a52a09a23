package tenancy

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/registry/rest"

	kcplogicalcluster "github.com/kcp-dev/logicalcluster/v3"
	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// BoundSchemas is the logical cluster holding a copy of every
// APIResourceSchema a binding has bound, as kcp keeps bound CRDs in a system
// cluster: consumers are served from the copy, so a provider deleting a
// schema (or its workspace) never takes a bound resource from them. No
// workspace can have its name (workspaces' names have no hyphen), so no
// request reaches it.
const BoundSchemas logicalcluster.Name = "system-bound-schemas"

// BoundSchemaName is the name of the copy of the schema of uid in
// BoundSchemas: short, whatever the schema's name, and unique per schema.
func BoundSchemaName(uid types.UID) string {
	return "u" + string(uid)
}

// keepSchema copies schema into BoundSchemas unless it is there. Schemas are
// immutable, so a copy never goes stale.
func keepSchema(ctx context.Context, schemas interface {
	rest.Getter
	rest.Creater
}, schema *apisv1alpha1.APIResourceSchema) error {
	at := in(ctx, BoundSchemas)
	name := BoundSchemaName(schema.UID)
	if _, err := schemas.Get(at, name, &metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return err
	}
	kept := &apisv1alpha1.APIResourceSchema{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{boundSchemaSource: schema.Annotations[kcplogicalcluster.AnnotationKey] + separator + schema.Name},
		},
		Spec: *schema.Spec.DeepCopy(),
	}
	if _, err := schemas.Create(at, kept, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("keeping a copy of APIResourceSchema %s: %w", schema.Name, err)
	}
	return nil
}

// boundSchemaSource annotates a kept schema with the cluster and name of its
// original.
const boundSchemaSource = "apis.warren.dev/schema-source"
