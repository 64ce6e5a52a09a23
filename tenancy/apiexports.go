package tenancy

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	"github.com/kcp-dev/sdk/apis/core"
	conditionsv1alpha1 "github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1"
	"github.com/kcp-dev/sdk/apis/third_party/conditions/util/conditions"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// IdentityNamespace is where an export's identity secret is made when the
// export names none, as kcp makes it.
const IdentityNamespace = "kcp-system"

// identityKey is the data key of an identity secret.
const identityKey = "key"

// ExportStores are the resources the export controller reads and writes.
type ExportStores struct {
	Exports Store
	// ExportStatus writes only the status of exports.
	ExportStatus rest.Updater
	Secrets      interface {
		rest.Getter
		rest.Creater
		rest.Watcher
	}
	Namespaces rest.Creater
	Slices     interface {
		rest.Getter
		rest.Creater
	}
}

// Exports gives every APIExport of the shard its identity and its endpoint
// slice, as kcp's export controller does:
//   - an export that names no identity secret gets one: a secret in
//     kcp-system of the export's name, holding 32 random bytes, which the
//     export's spec.identity.secretRef then names;
//   - status.identityHash is the hex SHA-256 of the secret's key, set once and
//     never changed: objects of the export's resources are stored under it, so
//     a changed or deleted secret makes the export's IdentityValid condition
//     false instead (the secrets are watched), until it is right again;
//   - unless annotated apiexports.apis.kcp.io/skip-endpointslice, an
//     APIExportEndpointSlice of the export's name, owned by the export.
//
// One controller serves every cluster through one wildcard watch; an export
// whose identity is valid needs no more work and costs nothing.
type Exports struct {
	stores     ExportStores
	controller *clusterwatch.Controller
	// byIdentity lists the exports of each identity hash (immutable once
	// set), for the claims of other exports' resources; bySecret the
	// exports of each identity secret, to verify them again when it changes.
	byIdentity refIndex[string]
	bySecret   refIndex[secretRef]
}

// secretRef names a secret of a cluster.
type secretRef struct {
	cluster         logicalcluster.Name
	namespace, name string
}

// NewExports returns the controller.
func NewExports(stores ExportStores) *Exports {
	e := &Exports{stores: stores}
	e.controller = &clusterwatch.Controller{Name: "apiexports", Source: stores.Exports, Sync: e.sync, Settled: identified, Workers: 4, Observe: e.observe}
	return e
}

// observe lists each export under its identity and its identity secret.
func (e *Exports) observe(ev clusterwatch.Event) {
	export, ok := ev.Object.(*apisv1alpha2.APIExport)
	if !ok {
		return
	}
	r := clusterwatch.Ref{Cluster: ev.Cluster, Name: export.Name}
	gone := ev.Type == watch.Deleted
	if hash := export.Status.IdentityHash; hash != "" && gone {
		e.byIdentity.remove(hash, r)
	} else if hash != "" {
		e.byIdentity.add(hash, r)
	}
	if id := export.Spec.Identity; id != nil && id.SecretRef != nil {
		secret := secretRef{cluster: ev.Cluster, namespace: cmp.Or(id.SecretRef.Namespace, IdentityNamespace), name: id.SecretRef.Name}
		if gone {
			e.bySecret.remove(secret, r)
		} else {
			e.bySecret.add(secret, r)
		}
	}
}

// ByIdentity returns an export of the shard whose identity hash is hash (the
// first by cluster and name, if several share it).
func (e *Exports) ByIdentity(hash string) (cluster logicalcluster.Name, name string, ok bool) {
	refs := e.byIdentity.refs(hash, clusterwatch.Ref{})
	if len(refs) == 0 {
		return "", "", false
	}
	first := slices.MinFunc(refs, func(a, b clusterwatch.Ref) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Name, b.Name))
	})
	return first.Cluster, first.Name, true
}

// Run works until ctx ends.
func (e *Exports) Run(ctx context.Context) {
	go clusterwatch.Follow(ctx, e.stores.Secrets, nil, func(ev clusterwatch.Event) {
		if m, err := meta.Accessor(ev.Object); err == nil {
			for _, r := range e.bySecret.refs(secretRef{cluster: ev.Cluster, namespace: m.GetNamespace(), name: m.GetName()}, clusterwatch.Ref{}) {
				e.controller.Enqueue(r)
			}
		}
	})
	e.controller.Run(ctx)
}

// identified tells an export whose identity is set and valid.
func identified(obj runtime.Object) bool {
	export := obj.(*apisv1alpha2.APIExport)
	return export.Status.IdentityHash != "" && conditions.IsTrue(export, apisv1alpha2.APIExportIdentityValid)
}

func (e *Exports) sync(ctx context.Context, r clusterwatch.Ref) error {
	obj, err := e.stores.Exports.Get(in(ctx, r.Cluster), r.Name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	export := obj.(*apisv1alpha2.APIExport)
	if export.DeletionTimestamp != nil {
		return nil
	}
	if export.Spec.Identity == nil || export.Spec.Identity.SecretRef == nil {
		// The spec's change brings the export back, to verify the identity.
		return e.makeIdentity(ctx, r.Cluster, export)
	}
	hash, err := e.identityHash(ctx, r.Cluster, export)
	status := export.DeepCopy()
	switch {
	case err != nil:
		conditions.MarkFalse(status, apisv1alpha2.APIExportIdentityValid, apisv1alpha2.IdentityVerificationFailedReason,
			conditionsv1alpha1.ConditionSeverityError, "%v", err)
	case status.Status.IdentityHash == "":
		status.Status.IdentityHash = hash
		conditions.MarkTrue(status, apisv1alpha2.APIExportIdentityValid)
	case status.Status.IdentityHash != hash:
		conditions.MarkFalse(status, apisv1alpha2.APIExportIdentityValid, apisv1alpha2.IdentityVerificationFailedReason,
			conditionsv1alpha1.ConditionSeverityError, "hash mismatch: identity secret hash %q must match status.identityHash %q", hash, status.Status.IdentityHash)
	default:
		conditions.MarkTrue(status, apisv1alpha2.APIExportIdentityValid)
	}
	if _, skip := export.Annotations[apisv1alpha2.APIExportEndpointSliceSkipAnnotation]; !skip {
		if err := e.ensureSlice(ctx, r.Cluster, export); err != nil {
			return err
		}
	}
	if equality.Semantic.DeepEqual(status.Status, export.Status) {
		return nil
	}
	_, err = update(ctx, e.stores.ExportStatus, r.Cluster, r.Name, func(obj runtime.Object) {
		obj.(*apisv1alpha2.APIExport).Status = status.Status
	})
	return err
}

// makeIdentity makes the identity secret of an export that names none, and
// names it in the export.
func (e *Exports) makeIdentity(ctx context.Context, cluster logicalcluster.Name, export *apisv1alpha2.APIExport) error {
	if _, err := e.stores.Namespaces.Create(in(ctx, cluster), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: IdentityNamespace}},
		rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("making namespace %s for the identity of export %s: %w", IdentityNamespace, export.Name, err)
	}
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: export.Name, Namespace: IdentityNamespace},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{identityKey: []byte(base64.RawURLEncoding.EncodeToString(random))},
	}
	// A secret left by an earlier attempt (or by the user) is the identity.
	if _, err := e.stores.Secrets.Create(genericapirequest.WithNamespace(in(ctx, cluster), IdentityNamespace), secret,
		rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("making the identity secret of export %s: %w", export.Name, err)
	}
	_, err := update(ctx, e.stores.Exports, cluster, export.Name, func(obj runtime.Object) {
		x := obj.(*apisv1alpha2.APIExport)
		if x.Spec.Identity == nil {
			x.Spec.Identity = &apisv1alpha2.Identity{}
		}
		if x.Spec.Identity.SecretRef == nil {
			x.Spec.Identity.SecretRef = &corev1.SecretReference{Namespace: IdentityNamespace, Name: export.Name}
		}
	})
	return err
}

// identityHash reads the export's identity secret and returns the hex SHA-256
// of its key.
func (e *Exports) identityHash(ctx context.Context, cluster logicalcluster.Name, export *apisv1alpha2.APIExport) (string, error) {
	ref := export.Spec.Identity.SecretRef
	namespace := cmp.Or(ref.Namespace, IdentityNamespace)
	obj, err := e.stores.Secrets.Get(genericapirequest.WithNamespace(in(ctx, cluster), namespace), ref.Name, &metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the identity secret %s/%s: %w", namespace, ref.Name, err)
	}
	key := obj.(*corev1.Secret).Data[identityKey]
	if len(key) == 0 {
		return "", fmt.Errorf("secret is missing data.%s", identityKey)
	}
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:]), nil
}

// ensureSlice makes the export's endpoint slice if it has none.
func (e *Exports) ensureSlice(ctx context.Context, cluster logicalcluster.Name, export *apisv1alpha2.APIExport) error {
	_, err := e.stores.Slices.Get(in(ctx, cluster), export.Name, &metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	slice := &apisv1alpha1.APIExportEndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: export.Name,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: apisv1alpha1.SchemeGroupVersion.String(), Kind: "APIExport", Name: export.Name, UID: export.UID,
			}},
		},
		Spec: apisv1alpha1.APIExportEndpointSliceSpec{APIExport: apisv1alpha1.ExportBindingReference{
			Name: export.Name, Path: export.Annotations[core.LogicalClusterPathAnnotationKey],
		}},
	}
	if _, err := e.stores.Slices.Create(in(ctx, cluster), slice, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("making the endpoint slice of export %s: %w", export.Name, err)
	}
	return nil
}
