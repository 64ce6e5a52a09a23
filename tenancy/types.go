package tenancy

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kcp-dev/sdk/apis/core"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
)

// The workspace types warren ships in root, as kcp does.
const (
	// Root is the type of the root workspace only.
	Root = "root"
	// Universal may be created anywhere; every other built-in type extends it.
	Universal = "universal"
	// Organization is for children of root, and root's default child type.
	Organization = "organization"
	// Team is for children of organizations and teams.
	Team = "team"
	// Home is the type of users' home workspaces, which have no parent.
	Home = "home"
)

// maxTypeDepth bounds how deep a type's extend.with chain is followed.
const maxTypeDepth = 10

// ParseTypeName reads "<path>:<name>", the way a LogicalCluster's annotation
// names its type.
func ParseTypeName(s string) (tenancyv1alpha1.WorkspaceTypeReference, error) {
	i := strings.LastIndex(s, separator)
	if i <= 0 || i == len(s)-1 {
		return tenancyv1alpha1.WorkspaceTypeReference{}, fmt.Errorf("workspace type %q is not of the form <path>:<name>", s)
	}
	return tenancyv1alpha1.WorkspaceTypeReference{Path: s[:i], Name: tenancyv1alpha1.WorkspaceTypeName(s[i+1:])}, nil
}

// typeName spells a type reference as <path>:<name>.
func typeName(ref tenancyv1alpha1.WorkspaceTypeReference) string {
	return typePath(ref) + separator + string(ref.Name)
}

// typePath returns the path of the workspace holding the type ref names.
func typePath(ref tenancyv1alpha1.WorkspaceTypeReference) string {
	if ref.Path == "" {
		return string(RootPath)
	}
	return ref.Path
}

// canonical returns ref with the path of the workspace that holds the type.
func canonical(wt *tenancyv1alpha1.WorkspaceType) tenancyv1alpha1.WorkspaceTypeReference {
	return tenancyv1alpha1.WorkspaceTypeReference{Name: tenancyv1alpha1.TypeName(wt.Name), Path: wt.Annotations[core.LogicalClusterPathAnnotationKey]}
}

// findType returns the type ref names as seen from the workspace at from: a
// reference with a path names that workspace's type; one without names the
// type of that name in from or the nearest workspace above it that holds one,
// root last, as kcp resolves it. The type is shared by the index: callers must
// not change it.
func (x *Index) findType(ctx context.Context, from Path, ref tenancyv1alpha1.WorkspaceTypeReference) (*tenancyv1alpha1.WorkspaceType, error) {
	if ref.Path != "" {
		return x.Type(ctx, ref)
	}
	for p := from; ; {
		wt, err := x.Type(ctx, tenancyv1alpha1.WorkspaceTypeReference{Name: ref.Name, Path: string(p)})
		if !apierrors.IsNotFound(err) {
			return wt, err
		}
		parent, ok := p.Parent()
		switch {
		case ok:
			p = parent
		case p != RootPath:
			// A home has no parent; root's types are the last resort.
			p = RootPath
		default:
			return nil, err
		}
	}
}

// aliases returns wt and every type it extends, transitively: a workspace of
// wt is a workspace of each of them, for placement and for who may use it.
func (x *Index) aliases(ctx context.Context, wt *tenancyv1alpha1.WorkspaceType) ([]*tenancyv1alpha1.WorkspaceType, error) {
	var out []*tenancyv1alpha1.WorkspaceType
	seen := map[string]bool{}
	var visit func(wt *tenancyv1alpha1.WorkspaceType, depth int) error
	visit = func(wt *tenancyv1alpha1.WorkspaceType, depth int) error {
		name := typeName(canonical(wt))
		if seen[name] {
			return nil
		}
		if depth > maxTypeDepth {
			return fmt.Errorf("workspace type %s extends types more than %d deep", name, maxTypeDepth)
		}
		seen[name] = true
		out = append(out, wt)
		for _, ref := range wt.Spec.Extend.With {
			base, err := x.findType(ctx, Path(canonical(wt).Path), ref)
			if err != nil {
				return fmt.Errorf("workspace type %s extends %s: %w", name, ref.String(), err)
			}
			if err := visit(base, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(wt, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// implements reports whether any of aliases is one of refs.
func implements(aliases []*tenancyv1alpha1.WorkspaceType, refs []tenancyv1alpha1.WorkspaceTypeReference) bool {
	for _, a := range aliases {
		for _, r := range refs {
			if typeName(canonical(a)) == typeName(r) {
				return true
			}
		}
	}
	return false
}

// names spells the canonical names of types, for messages.
func names(types []*tenancyv1alpha1.WorkspaceType) string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = typeName(canonical(t))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// refNames spells refs, for messages.
func refNames(refs []tenancyv1alpha1.WorkspaceTypeReference) string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = typeName(r)
	}
	return "[" + strings.Join(out, " ") + "]"
}

// typesOf returns the type ref names and every type it extends.
func (x *Index) typesOf(ctx context.Context, ref tenancyv1alpha1.WorkspaceTypeReference) ([]*tenancyv1alpha1.WorkspaceType, error) {
	wt, err := x.Type(ctx, ref)
	if err != nil {
		return nil, err
	}
	return x.aliases(ctx, wt)
}
