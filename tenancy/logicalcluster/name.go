// Package logicalcluster names the logical clusters warren serves and carries a
// request's cluster in its context.
//
// A request's cluster is decided once, by tenancy.Routing, before anything else reads the
// request; from then on every layer (authorization, registry keys, admission) takes
// it from the context, so no layer can disagree about which cluster it serves.
package logicalcluster

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Name is the name of a logical cluster: a DNS label.
type Name string

const (
	// Root is the cluster of requests without a /clusters/<name> prefix.
	Root Name = "root"
	// Wildcard addresses every cluster at once, for lists and watches.
	Wildcard Name = "*"
)

// Annotation is set on every object read from storage to the name of the
// cluster holding it, so objects of a wildcard list tell where they live.
const Annotation = "warren.dev/cluster"

// Validate says why name cannot name a logical cluster, or nil if it can.
func Validate(name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("invalid logical cluster name %q: %s", name, errs[0])
	}
	return nil
}

type contextKey struct{}

// WithName returns a copy of ctx that carries the cluster name.
func WithName(ctx context.Context, name Name) context.Context {
	return context.WithValue(ctx, contextKey{}, name)
}

// From returns the cluster ctx carries, if any.
func From(ctx context.Context) (Name, bool) {
	name, ok := ctx.Value(contextKey{}).(Name)
	return name, ok && name != ""
}

// UserExtra is the key of a user's extra information naming the cluster the user
// belongs to (service accounts); such a user is nobody in any other cluster.
const UserExtra = "warren.dev/cluster"
