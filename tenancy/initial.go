package tenancy

import (
	"encoding/json"
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
)

// kcp's WorkspaceType has no field for the objects a new workspace starts
// with (kcp leaves that to initializer controllers); warren's types may name
// some in two annotations, which warren's own initialisation makes in every
// new workspace of the type (or of a type extending it).
const (
	// InitialNamespacesAnnotation lists namespaces, comma-separated, besides
	// "default".
	InitialNamespacesAnnotation = "initialization.warren.dev/namespaces"
	// InitialClusterRoleBindingsAnnotation holds a JSON list of
	// {"name", "clusterRole", "subjects"}: cluster role bindings besides the
	// one making the workspace's creator cluster-admin.
	InitialClusterRoleBindingsAnnotation = "initialization.warren.dev/cluster-role-bindings"
)

// AdminBinding is the ClusterRoleBinding making a workspace's creator its
// admin, named as in kcp.
const AdminBinding = "workspace-admin"

// InitialClusterRoleBinding is a ClusterRoleBinding a new workspace starts with.
type InitialClusterRoleBinding struct {
	Name        string           `json:"name"`
	ClusterRole string           `json:"clusterRole"`
	Subjects    []rbacv1.Subject `json:"subjects"`
}

// Initial returns the namespaces and cluster role bindings wt's annotations
// ask for.
func Initial(wt *tenancyv1alpha1.WorkspaceType) ([]string, []InitialClusterRoleBinding, error) {
	var namespaces []string
	if s := wt.Annotations[InitialNamespacesAnnotation]; s != "" {
		namespaces = strings.Split(s, ",")
	}
	var bindings []InitialClusterRoleBinding
	if s := wt.Annotations[InitialClusterRoleBindingsAnnotation]; s != "" {
		if err := json.Unmarshal([]byte(s), &bindings); err != nil {
			return nil, nil, fmt.Errorf("workspace type %s: annotation %s: %w", wt.Name, InitialClusterRoleBindingsAnnotation, err)
		}
	}
	return namespaces, bindings, nil
}

// ValidateInitial says what is wrong with the initial objects wt's annotations
// ask for.
func ValidateInitial(wt *tenancyv1alpha1.WorkspaceType) field.ErrorList {
	annotations := field.NewPath("metadata", "annotations")
	namespaces, bindings, err := Initial(wt)
	if err != nil {
		return field.ErrorList{field.Invalid(annotations.Key(InitialClusterRoleBindingsAnnotation), wt.Annotations[InitialClusterRoleBindingsAnnotation], err.Error())}
	}
	var errs field.ErrorList
	for _, ns := range namespaces {
		for _, msg := range apivalidation.ValidateNamespaceName(ns, false) {
			errs = append(errs, field.Invalid(annotations.Key(InitialNamespacesAnnotation), ns, msg))
		}
	}
	p := annotations.Key(InitialClusterRoleBindingsAnnotation)
	for i, b := range bindings {
		for _, msg := range apivalidation.NameIsDNSSubdomain(b.Name, false) {
			errs = append(errs, field.Invalid(p.Index(i).Child("name"), b.Name, msg))
		}
		if b.Name == AdminBinding {
			errs = append(errs, field.Invalid(p.Index(i).Child("name"), b.Name, "is the binding making a workspace's creator its admin"))
		}
		if b.ClusterRole == "" {
			errs = append(errs, field.Required(p.Index(i).Child("clusterRole"), ""))
		}
		if len(b.Subjects) == 0 {
			errs = append(errs, field.Required(p.Index(i).Child("subjects"), ""))
		}
	}
	return errs
}
