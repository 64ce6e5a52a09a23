// Package scheme holds the types warren serves and how they convert.
//
// There are no internal types outside k8s.io/kubernetes, so every served group
// registers its external Go types a second time under the internal version:
// conversion between the two is a re-stamp of the kind, which is what the generic
// apiserver's codecs, server-side apply and watch expect to find. A group served
// in two versions (apis.kcp.io) takes the internal type of each kind from the
// first version listed in Served that has it; the other version converts to it
// with the conversion functions its Go types come with (kcp's sdk registers
// them), as a Kubernetes group converts to its internal types.
package scheme

import (
	"fmt"
	"reflect"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
)

// Scheme knows every type warren serves, in its v1 and internal versions.
var Scheme = runtime.NewScheme()

// Codecs encodes and decodes the types of Scheme.
var Codecs = serializer.NewCodecFactory(Scheme)

// StorageCodecs are Codecs with CBOR besides, which only storage writes (the
// API does not offer it to clients); their universal decoder reads every form
// an object may be stored in.
var StorageCodecs = serializer.NewCodecFactory(Scheme, serializer.WithSerializer(cbor.NewSerializerInfo))

// OpenAPIScheme knows only the external versions; the OpenAPI namer built from it
// never names an internal version in x-kubernetes-group-version-kind.
var OpenAPIScheme = runtime.NewScheme()

// Served lists the group versions warren serves built in, each with its install
// function, the media type its objects are stored as, and, in a group of
// several versions, the resources it is the storage version of. A group's
// versions are listed preferred first.
//
// Kubernetes' types are stored as protobuf, as kube-apiserver stores them.
// kcp's have no protobuf form: the workspace types, which every workspace
// writes several times, are stored as CBOR, which decodes in about 40% of the
// time JSON takes; apis.kcp.io stays JSON: its objects (an APIResourceSchema's
// schema is a RawExtension, which CBOR gives back as re-encoded JSON) do not
// come back from CBOR as they come back from JSON (TestCBORStorageReadsAsJSONDid).
var Served = []struct {
	GroupVersion schema.GroupVersion
	AddToScheme  func(*runtime.Scheme) error
	StoredAs     string
	// Stores lists the resources stored in this version when the group's
	// first version does not store them all; empty means every resource the
	// version serves.
	Stores []string
}{
	{corev1.SchemeGroupVersion, corev1.AddToScheme, runtime.ContentTypeProtobuf, nil},
	{rbacv1.SchemeGroupVersion, rbacv1.AddToScheme, runtime.ContentTypeProtobuf, nil},
	{coordinationv1.SchemeGroupVersion, coordinationv1.AddToScheme, runtime.ContentTypeProtobuf, nil},
	{eventsv1.SchemeGroupVersion, eventsv1.AddToScheme, runtime.ContentTypeProtobuf, nil},
	{authorizationv1.SchemeGroupVersion, authorizationv1.AddToScheme, runtime.ContentTypeProtobuf, nil},
	{authenticationv1.SchemeGroupVersion, authenticationv1.AddToScheme, runtime.ContentTypeProtobuf, nil},
	{flowcontrolv1.SchemeGroupVersion, flowcontrolv1.AddToScheme, runtime.ContentTypeProtobuf, nil},
	{tenancyv1alpha1.SchemeGroupVersion, tenancyv1alpha1.AddToScheme, runtime.ContentTypeCBOR, nil},
	{corev1alpha1.SchemeGroupVersion, corev1alpha1.AddToScheme, runtime.ContentTypeCBOR, nil},
	// As kcp: APIExports and APIBindings are stored in v1alpha2, the rest of
	// the group exists in v1alpha1 only.
	{apisv1alpha2.SchemeGroupVersion, apisv1alpha2.AddToScheme, runtime.ContentTypeJSON, []string{"apiexports", "apibindings"}},
	{apisv1alpha1.SchemeGroupVersion, apisv1alpha1.AddToScheme, runtime.ContentTypeJSON, nil},
}

// StorageVersion returns the version a built-in resource's objects are stored
// in and their media type; other groups (custom resources, apiextensions) are
// v1 and JSON.
func StorageVersion(gr schema.GroupResource) (gv schema.GroupVersion, mediaType string) {
	for _, g := range Served {
		if g.GroupVersion.Group == gr.Group && (len(g.Stores) == 0 || slices.Contains(g.Stores, gr.Resource)) {
			return g.GroupVersion, g.StoredAs
		}
	}
	return schema.GroupVersion{Group: gr.Group, Version: "v1"}, runtime.ContentTypeJSON
}

// StorageCodec encodes objects of gvr's resource in gvr's version, as the
// media type StorageVersion gives (protobuf, CBOR or JSON), and decodes any of
// these, so that what an earlier version stored in another form is still read.
func StorageCodec(gvr schema.GroupVersionResource) (runtime.Codec, error) {
	_, mediaType := StorageVersion(gvr.GroupResource())
	info, ok := runtime.SerializerInfoForMediaType(StorageCodecs.SupportedMediaTypes(), mediaType)
	if !ok {
		return nil, fmt.Errorf("storage of %s: no serializer for %s", gvr.GroupResource(), mediaType)
	}
	return StorageCodecs.CodecForVersions(info.Serializer, StorageCodecs.UniversalDeserializer(), gvr.GroupVersion(), runtime.InternalGroupVersioner), nil
}

func init() {
	utilruntime.Must(addTo(Scheme, true))
	utilruntime.Must(addTo(OpenAPIScheme, false))
}

func addTo(s *runtime.Scheme, internal bool) error {
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	s.AddUnversionedTypes(schema.GroupVersion{Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{},
		&metav1.APIGroup{}, &metav1.APIResourceList{})
	for _, g := range Served {
		if err := g.AddToScheme(s); err != nil {
			return err
		}
		if internal {
			registerInternal(s, g.GroupVersion)
		}
	}
	if internal {
		// CustomResourceDefinitions have real internal types, with conversions.
		apiextensionsinstall.Install(s)
		if err := addEventConversions(s); err != nil {
			return err
		}
	} else if err := apiextensionsv1.AddToScheme(s); err != nil {
		return err
	}
	return addDefaults(s)
}

// registerInternal registers the group's own types of gv (not the meta/v1 option
// types AddToGroupVersion added) under the internal version of its group, each
// kind that an earlier version of the group has not registered already.
func registerInternal(s *runtime.Scheme, gv schema.GroupVersion) {
	internal := schema.GroupVersion{Group: gv.Group, Version: runtime.APIVersionInternal}
	var pkg string
	for _, t := range s.KnownTypes(gv) {
		if t.Name() != "" && t.PkgPath() != reflect.TypeOf(metav1.Status{}).PkgPath() {
			pkg = t.PkgPath()
			break
		}
	}
	for kind, t := range s.KnownTypes(gv) {
		if t.PkgPath() != pkg || s.Recognizes(internal.WithKind(kind)) {
			continue
		}
		if gv == eventsv1.SchemeGroupVersion && kind == "Event" {
			// events.k8s.io/v1 Events are stored as core/v1 Events, as in
			// Kubernetes: their internal type is the core one.
			s.AddKnownTypeWithName(internal.WithKind(kind), &corev1.Event{})
			continue
		}
		if gv == eventsv1.SchemeGroupVersion && kind == "EventList" {
			s.AddKnownTypeWithName(internal.WithKind(kind), &corev1.EventList{})
			continue
		}
		s.AddKnownTypeWithName(internal.WithKind(kind), reflect.New(t).Interface().(runtime.Object))
	}
}
