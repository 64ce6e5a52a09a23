// Package logicalcluster names the logical clusters warren serves and carries a
// request's cluster in its context.
//
// A request's cluster is decided once: tenancy.Routing reads the path or name a
// request gives before anything else reads the request, and the first layer that
// asks for the cluster after authentication (the workspace access authorizer)
// resolves it; from then on every layer (authorization, registry keys,
// admission) takes the same answer from the context, so no layer can disagree
// about which cluster it serves, and nobody unauthenticated makes the server
// look a workspace up.
package logicalcluster

import (
	"context"
	"fmt"
	"sync"

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
// cluster holding it, so objects of a wildcard list tell where they live. It is
// kcp's, so kcp's clients and libraries find the cluster where they expect it.
const Annotation = "kcp.io/cluster"

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

// pending is the cluster of a request that is resolved on first use.
type pending struct {
	// target is the path or name the request gave.
	target  string
	once    sync.Once
	resolve func() (Name, error)
	name    Name
	err     error
}

func (p *pending) get() (Name, error) {
	p.once.Do(func() { p.name, p.err = p.resolve() })
	return p.name, p.err
}

// WithResolver returns a copy of ctx whose cluster, named target in the
// request, is what resolve returns, called once, when the cluster is first
// asked for.
func WithResolver(ctx context.Context, target string, resolve func() (Name, error)) context.Context {
	return context.WithValue(ctx, contextKey{}, &pending{target: target, resolve: resolve})
}

// Target returns the path or name of its cluster the request of ctx gave, or
// the name of the cluster it is in if it gave none; it resolves nothing.
func Target(ctx context.Context) string {
	switch v := ctx.Value(contextKey{}).(type) {
	case Name:
		return string(v)
	case *pending:
		return v.target
	}
	return ""
}

// From returns the cluster ctx carries, if any (none if it could not be
// resolved: Unresolved tells why).
func From(ctx context.Context) (Name, bool) {
	switch v := ctx.Value(contextKey{}).(type) {
	case Name:
		return v, v != ""
	case *pending:
		name, err := v.get()
		return name, err == nil && name != ""
	}
	return "", false
}

// Requested reports whether the request of ctx named its cluster (a
// /clusters/<path-or-name> prefix) rather than defaulting to root.
func Requested(ctx context.Context) bool {
	_, ok := ctx.Value(contextKey{}).(*pending)
	return ok
}

// Unresolved returns why the cluster a request named could not be resolved, or
// nil if it was (or ctx names none).
func Unresolved(ctx context.Context) error {
	if p, ok := ctx.Value(contextKey{}).(*pending); ok {
		_, err := p.get()
		return err
	}
	return nil
}

// UserExtra is the key of a user's extra information naming the cluster the user
// belongs to (service accounts); such a user is nobody in any other cluster. It
// is the key kcp's service accounts carry.
const UserExtra = "authentication.kubernetes.io/cluster-name"
