package tenancy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/registry/rest"

	kcpcrypto "github.com/kcp-dev/apimachinery/v2/pkg/util/crypto"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// HomeWorkspace is the name under which root's workspaces answer with the
// caller's home workspace: GET /clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/~,
// what kcp's `kubectl ws ~` asks.
const HomeWorkspace = "~"

// homeType is the type of every home workspace.
var homeType = tenancyv1alpha1.WorkspaceTypeReference{Name: Home, Path: string(RootPath)}

// homeStall is how long a home may stay Initializing, made by a request that
// is still at it, before another request takes the initialisation over.
const homeStall = 10 * time.Second

// HomeName returns the name of the logical cluster of the home workspace of
// the user username, as kcp names it (with kcp's encoder): the first 8 bytes
// of the SHA-224 of the name in base 36, one "0" before it per leading zero
// byte. A user's home has the same name on warren and on kcp.
func HomeName(username string) logicalcluster.Name {
	sum := sha256.Sum224([]byte(username))
	return logicalcluster.Name(kcpcrypto.Base36.BytesPad(sum[:8]))
}

// Homes makes users' home workspaces on their first use and answers for them:
// a home is a logical cluster of type root:home with no parent and no
// Workspace object, at the path user:<name>, whose user is its admin.
type Homes struct {
	stores Stores
	index  *Index
	// authz decides who may have a home made: verb create on workspaces
	// named "~" in root.
	authz      authorizer.Authorizer
	shard, url string
}

// NewHomes returns the homes of the shard at url, made for users authz lets
// create workspaces/~ in root.
func NewHomes(stores Stores, index *Index, authz authorizer.Authorizer, shard, url string) *Homes {
	return &Homes{stores: stores, index: index, authz: authz, shard: shard, url: url}
}

// Get returns u's home as kcp's server returns it, a Workspace named "cluster"
// whose URL addresses the home's logical cluster, making the home first if
// there is none and u may have one. While another request is making it, it
// answers 429 with Retry-After, which clients retry.
func (h *Homes) Get(ctx context.Context, u user.Info) (*tenancyv1alpha1.Workspace, error) {
	if u == nil || u.GetName() == "" {
		return nil, apierrors.NewUnauthorized("a home workspace belongs to an authenticated user")
	}
	name := HomeName(u.GetName())
	inside := in(ctx, name)
	lc, err := h.logicalCluster(inside)
	made := false
	if apierrors.IsNotFound(err) {
		lc, made, err = h.create(ctx, u, name)
	}
	if err != nil {
		return nil, err
	}
	if lc.Status.Phase == corev1alpha1.LogicalClusterPhaseInitializing {
		if !made && time.Since(lc.CreationTimestamp.Time) < homeStall {
			return nil, apierrors.NewTooManyRequests(fmt.Sprintf("the home workspace of %q is being made", u.GetName()), 1)
		}
		if lc, err = h.initialize(ctx, u, name); err != nil {
			return nil, err
		}
	}
	return &tenancyv1alpha1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: corev1alpha1.LogicalClusterName, CreationTimestamp: lc.CreationTimestamp},
		Spec: tenancyv1alpha1.WorkspaceSpec{
			Type:    homeType.DeepCopy(),
			Cluster: string(name),
			URL:     lc.Status.URL,
		},
		Status: tenancyv1alpha1.WorkspaceStatus{Phase: lc.Status.Phase, Conditions: lc.Status.Conditions, Initializers: lc.Status.Initializers},
	}, nil
}

func (h *Homes) logicalCluster(ctx context.Context) (*corev1alpha1.LogicalCluster, error) {
	obj, err := h.stores.LogicalClusters.Get(ctx, corev1alpha1.LogicalClusterName, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1alpha1.LogicalCluster), nil
}

// create makes the LogicalCluster of u's home, Initializing, if u may have
// one made; if another request made it meanwhile, it returns that one, and
// made false.
func (h *Homes) create(ctx context.Context, u user.Info, name logicalcluster.Name) (lc *corev1alpha1.LogicalCluster, made bool, err error) {
	attrs := authorizer.AttributesRecord{
		User: u, Verb: "create", APIGroup: tenancyv1alpha1.SchemeGroupVersion.Group, APIVersion: tenancyv1alpha1.SchemeGroupVersion.Version,
		Resource: "workspaces", Name: HomeWorkspace, ResourceRequest: true,
	}
	decision, reason, err := h.authz.Authorize(logicalcluster.WithName(ctx, logicalcluster.Root), attrs)
	if err != nil {
		return nil, false, fmt.Errorf("deciding whether %q may have a home workspace: %w", u.GetName(), err)
	}
	if decision != authorizer.DecisionAllow {
		if reason == "" {
			reason = "no permission to create workspaces/~ in root"
		}
		return nil, false, apierrors.NewForbidden(workspacesResource, HomeWorkspace, fmt.Errorf("%q may not have a home workspace made: %s", u.GetName(), reason))
	}
	types, err := h.types(ctx)
	if err != nil {
		return nil, false, err
	}
	initializers, err := initializersOf(ctx, h.index, types)
	if err != nil {
		return nil, false, err
	}
	owner := userInfo(u)
	lc, err = newLogicalCluster(name, HomePath(u.GetName()), homeType, h.shard, h.url, corev1alpha1.LogicalClusterPhaseInitializing, initializers, &owner)
	if err != nil {
		return nil, false, err
	}
	obj, err := h.stores.LogicalClusters.Create(in(ctx, name), lc, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	if apierrors.IsNotFound(err) {
		// A home, named after its user, was erased before: its name is
		// fenced against late writes of the old one. This is a new one.
		if err = h.stores.Eraser.ReviveCluster(ctx, string(name)); err == nil {
			obj, err = h.stores.LogicalClusters.Create(in(ctx, name), lc, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
		}
	}
	if apierrors.IsAlreadyExists(err) {
		lc, err = h.logicalCluster(in(ctx, name))
		return lc, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("making the home workspace of %q: %w", u.GetName(), err)
	}
	return obj.(*corev1alpha1.LogicalCluster), true, nil
}

// initialize gives u's home what a new workspace of type home starts with,
// u made its admin, and makes it Ready. Every step is idempotent.
func (h *Homes) initialize(ctx context.Context, u user.Info, name logicalcluster.Name) (*corev1alpha1.LogicalCluster, error) {
	types, err := h.types(ctx)
	if err != nil {
		return nil, err
	}
	owner := userInfo(u)
	if err := initialObjects(in(ctx, name), h.stores, types, &owner); err != nil {
		return nil, fmt.Errorf("initialising the home workspace of %q: %w", u.GetName(), err)
	}
	ready, err := setClusterPhase(ctx, h.stores, name, corev1alpha1.LogicalClusterPhaseReady)
	if err != nil {
		return nil, err
	}
	return ready, h.index.Stored(name, ready)
}

// types returns the type home and those it extends.
func (h *Homes) types(ctx context.Context) ([]*tenancyv1alpha1.WorkspaceType, error) {
	wt, err := h.index.Type(ctx, homeType)
	if err != nil {
		return nil, fmt.Errorf("the workspace type root:home: %w", err)
	}
	return h.index.aliases(ctx, wt)
}

// userInfo is u as kcp records a workspace's creator.
func userInfo(u user.Info) authenticationv1.UserInfo {
	info := authenticationv1.UserInfo{Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}
	for k, v := range u.GetExtra() {
		if info.Extra == nil {
			info.Extra = map[string]authenticationv1.ExtraValue{}
		}
		info.Extra[k] = v
	}
	return info
}
