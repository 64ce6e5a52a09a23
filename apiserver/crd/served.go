package crd

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/conversion"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource/tableconvertor"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/handlers"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/client-go/scale"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// served is everything needed to serve the custom resources of one CRD spec:
// a store and request scopes per version. It holds no cluster: the cluster
// comes with each request, so clusters whose CRDs have the same spec share it.
type served struct {
	versions map[string]*servedVersion

	// Stores hold resources (an etcd client each, on etcd) that are released
	// once the served is evicted from the handler's cache and no request uses
	// it any more: a request (a watch, too) keeps what it began with.
	mu        sync.Mutex
	users     int
	evicted   bool
	destroyed bool
}

// acquire marks s in use by a request, or reports false if it is evicted:
// the request builds it again.
func (s *served) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.evicted {
		return false
	}
	s.users++
	return true
}

// release ends a request's use of s.
func (s *served) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users--
	s.destroyIfIdle()
}

// evict marks s out of the cache: it is destroyed when its last request ends.
func (s *served) evict() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evicted = true
	s.destroyIfIdle()
}

// destroyIfIdle releases the stores of an evicted, unused s, once. s.mu must
// be held.
func (s *served) destroyIfIdle() {
	if !s.evicted || s.users > 0 || s.destroyed {
		return
	}
	s.destroyed = true
	for _, v := range s.versions {
		// Status and scale share the resource's store.
		v.storage.CustomResource.Destroy()
	}
}

type servedVersion struct {
	storage             customresource.CustomResourceStorage
	main, status, scale *handlers.RequestScope
	warnings            []string
	// typeConverter types the objects of the version for server-side apply.
	typeConverter managedfields.TypeConverter
}

// servingInputs are what building a served CRD needs from the server.
type servingInputs struct {
	options    generic.RESTOptionsGetter
	converters *conversion.CRConverterFactory
	authorizer authorizer.Authorizer
	// static are the OpenAPI models of the built-in types (ObjectMeta and the
	// like), which CRD schemas refer to.
	static       map[string]*spec.Schema
	maxBodyBytes int64
	// prefix is where the objects are stored; "" for a CRD's own prefix.
	prefix string
}

// specHash identifies what serving depends on: the spec and the accepted names.
func specHash(crd *apiextensionsv1.CustomResourceDefinition) (string, error) {
	b, err := json.Marshal(struct {
		Spec  *apiextensionsv1.CustomResourceDefinitionSpec  `json:"spec"`
		Names *apiextensionsv1.CustomResourceDefinitionNames `json:"names"`
	}{&crd.Spec, &crd.Status.AcceptedNames})
	if err != nil {
		return "", err
	}
	return hashOf(b), nil
}

// newServed builds the stores and request scopes of crd's versions.
func newServed(in *servingInputs, crd *apiextensionsv1.CustomResourceDefinition) (*served, error) {
	names := crd.Status.AcceptedNames
	if names.Plural == "" || names.Singular == "" || names.Kind == "" || names.ListKind == "" {
		return nil, fmt.Errorf("CRD %s has no accepted names yet", crd.Name)
	}
	storageVersion, err := apihelpers.GetCRDStorageVersion(crd)
	if err != nil {
		return nil, err
	}
	s, err := structuralSchemas(crd)
	if err != nil {
		return nil, err
	}
	typeConverter, err := applyTypeConverter(in.static, crd)
	if err != nil {
		return nil, err
	}
	safe, unsafe, err := in.converters.NewConverter(crd)
	if err != nil {
		return nil, err
	}
	equivalents := runtime.NewEquivalentResourceRegistry()
	replicas := managedfields.ResourcePathMappings{}
	for _, v := range crd.Spec.Versions {
		gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: v.Name, Resource: names.Plural}
		kind := gvr.GroupVersion().WithKind(names.Kind)
		equivalents.RegisterKindFor(gvr, "", kind)
		sub := v.Subresources
		replicas[gvr.GroupVersion().String()] = nil
		if sub != nil && sub.Status != nil {
			equivalents.RegisterKindFor(gvr, "status", kind)
		}
		if sub != nil && sub.Scale != nil {
			equivalents.RegisterKindFor(gvr, "scale", autoscalingv1.SchemeGroupVersion.WithKind("Scale"))
			replicas[gvr.GroupVersion().String()] = fieldPath(sub.Scale.SpecReplicasPath)
		}
	}
	out := &served{versions: map[string]*servedVersion{}}
	for i := range crd.Spec.Versions {
		v := &crd.Spec.Versions[i]
		if !v.Served && !v.Storage {
			continue
		}
		sv, err := newServedVersion(in, crd, v, s, storageVersion, safe, unsafe, typeConverter, equivalents, replicas)
		if err != nil {
			return nil, fmt.Errorf("version %s: %w", v.Name, err)
		}
		out.versions[v.Name] = sv
	}
	return out, nil
}

// structuralSchemas returns the structural schemas of crd's versions, with
// defaults pruned as the API serves them.
func structuralSchemas(crd *apiextensionsv1.CustomResourceDefinition) (*schemas, error) {
	s := &schemas{
		kind:            schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Status.AcceptedNames.Kind},
		byVersion:       map[string]*structuralschema.Structural{},
		preserveUnknown: crd.Spec.PreserveUnknownFields,
	}
	for _, v := range crd.Spec.Versions {
		internal, err := internalSchema(crd, v.Name)
		if err != nil {
			return nil, err
		}
		if internal == nil {
			continue
		}
		structural, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
		if err != nil {
			if crd.Spec.PreserveUnknownFields {
				continue
			}
			return nil, fmt.Errorf("schema of version %s is not structural: %w", v.Name, err)
		}
		if !crd.Spec.PreserveUnknownFields {
			structural = structural.DeepCopy()
			if err := structuraldefaulting.PruneDefaults(structural); err != nil {
				return nil, fmt.Errorf("defaults of version %s: %w", v.Name, err)
			}
		}
		s.byVersion[v.Name] = structural
	}
	return s, nil
}

// internalSchema returns the validation of a version in the internal form the
// validators take; nil if it has none.
func internalSchema(crd *apiextensionsv1.CustomResourceDefinition, version string) (*apiextensions.CustomResourceValidation, error) {
	v, err := apihelpers.GetSchemaForVersion(crd, version)
	if err != nil || v == nil {
		return nil, err
	}
	internal := &apiextensions.CustomResourceValidation{}
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v, internal, nil); err != nil {
		return nil, fmt.Errorf("schema of version %s: %w", version, err)
	}
	return internal, nil
}

// applyTypeConverter returns the type information server-side apply merges
// with: crd's schemas beside the built-in models they refer to.
func applyTypeConverter(static map[string]*spec.Schema, crd *apiextensionsv1.CustomResourceDefinition) (managedfields.TypeConverter, error) {
	specs := []*spec3.OpenAPI{{Version: "3.0.0", Info: &spec.Info{}, Components: &spec3.Components{Schemas: static}}}
	for _, v := range crd.Spec.Versions {
		s, err := builder.BuildOpenAPIV3(crd, v.Name, builder.Options{})
		if err != nil {
			return nil, fmt.Errorf("apply models of version %s: %w", v.Name, err)
		}
		specs = append(specs, s)
	}
	merged, err := builder.MergeSpecsV3(specs...)
	if err != nil {
		return nil, fmt.Errorf("apply models: %w", err)
	}
	return managedfields.NewTypeConverter(merged.Components.Schemas, crd.Spec.PreserveUnknownFields)
}

// fieldPath turns a JSON path like .spec.replicas into a field path.
func fieldPath(jsonPath string) fieldpath.Path {
	var p fieldpath.Path
	for _, name := range strings.Split(strings.TrimPrefix(jsonPath, "."), ".") {
		p = append(p, fieldpath.PathElement{FieldName: &name})
	}
	return p
}

func newServedVersion(in *servingInputs, crd *apiextensionsv1.CustomResourceDefinition, v *apiextensionsv1.CustomResourceDefinitionVersion,
	s *schemas, storageVersion string, safe, unsafe runtime.ObjectConvertor, typeConverter managedfields.TypeConverter,
	equivalents runtime.EquivalentResourceMapper, replicas managedfields.ResourcePathMappings) (*servedVersion, error) {
	names := crd.Status.AcceptedNames
	gv := schema.GroupVersion{Group: crd.Spec.Group, Version: v.Name}
	kind := gv.WithKind(names.Kind)
	namespaced := crd.Spec.Scope == apiextensionsv1.NamespaceScoped

	// Request parameters (list, get and delete options) decode by this scheme.
	params := runtime.NewScheme()
	params.AddUnversionedTypes(gv, &metav1.ListOptions{}, &metav1.GetOptions{}, &metav1.DeleteOptions{})
	t := newTyper(params)

	internal, err := internalSchema(crd, v.Name)
	if err != nil {
		return nil, err
	}
	var props *apiextensions.JSONSchemaProps
	if internal != nil {
		props = internal.OpenAPIV3Schema
	}
	validator, _, err := validation.NewSchemaValidator(props)
	if err != nil {
		return nil, err
	}
	var status *apiextensions.CustomResourceSubresourceStatus
	var statusValidator validation.SchemaValidator
	var scaleSpec *apiextensions.CustomResourceSubresourceScale
	if sub := v.Subresources; sub != nil {
		if sub.Status != nil {
			status = &apiextensions.CustomResourceSubresourceStatus{}
			if props != nil {
				if statusProps, ok := props.Properties["status"]; ok {
					if statusValidator, _, err = validation.NewSchemaValidator(&statusProps); err != nil {
						return nil, err
					}
				}
			}
		}
		if sub.Scale != nil {
			scaleSpec = &apiextensions.CustomResourceSubresourceScale{}
			if err := apiextensionsv1.Convert_v1_CustomResourceSubresourceScale_To_apiextensions_CustomResourceSubresourceScale(sub.Scale, scaleSpec, nil); err != nil {
				return nil, err
			}
		}
	}
	columns := v.AdditionalPrinterColumns
	if len(columns) == 0 {
		columns = []apiextensionsv1.CustomResourceColumnDefinition{ageColumn}
	}
	table, err := tableconvertor.New(columns)
	if err != nil {
		return nil, fmt.Errorf("printer columns: %w", err)
	}
	strategy := customresource.NewStrategy(t, namespaced, kind, validator, statusValidator, s.byVersion[v.Name], status, scaleSpec, v.SelectableFields)
	options := &storageOptions{
		RESTOptionsGetter: in.options,
		codec:             storageCodec(safe, s, schema.GroupVersion{Group: crd.Spec.Group, Version: storageVersion}, gv),
		prefix:            in.prefix,
	}
	storage, err := customresource.NewStorage(
		schema.GroupResource{Group: crd.Spec.Group, Resource: names.Plural},
		schema.GroupResource{Group: crd.Spec.Group, Resource: names.Singular},
		kind, gv.WithKind(names.ListKind), strategy, options, names.Categories, table, replicas)
	if err != nil {
		return nil, err
	}

	main := &handlers.RequestScope{
		Namer:                    handlers.ContextBasedNaming{Namer: meta.NewAccessor(), ClusterScoped: !namespaced},
		Serializer:               newSerializers(t, safe, s),
		ParameterCodec:           runtime.NewParameterCodec(params),
		Creater:                  creator{},
		Convertor:                safe,
		Defaulter:                s,
		Typer:                    t,
		UnsafeConvertor:          unsafe,
		EquivalentResourceMapper: equivalents,
		Resource:                 gv.WithResource(names.Plural),
		Kind:                     kind,
		HubGroupVersion:          gv,
		MetaGroupVersion:         metav1.SchemeGroupVersion,
		TableConvertor:           storage.CustomResource,
		Authorizer:               in.authorizer,
		MaxRequestBodyBytes:      in.maxBodyBytes,
	}
	for _, info := range main.Serializer.SupportedMediaTypes() {
		if info.MediaType != runtime.ContentTypeProtobuf {
			main.StandardSerializers = append(main.StandardSerializers, info)
		}
	}
	sv := &servedVersion{storage: storage, main: main, typeConverter: typeConverter}
	if sv.main.FieldManager, err = fieldManager(typeConverter, main, storage.CustomResource.GetResetFields(), ""); err != nil {
		return nil, err
	}

	statusScope := *main
	statusScope.Subresource = "status"
	if storage.Status != nil {
		if statusScope.FieldManager, err = fieldManager(typeConverter, main, storage.Status.GetResetFields(), "status"); err != nil {
			return nil, err
		}
	}
	sv.status = &statusScope

	scaleScope := *main
	scaleScope.Subresource = "scale"
	scaleScope.Serializer = serializer.NewCodecFactory(scale.NewScaleConverter().Scheme())
	scaleScope.Kind = autoscalingv1.SchemeGroupVersion.WithKind("Scale")
	if scaleScope.TableConvertor, err = tableconvertor.New(scaleColumns(v)); err != nil {
		return nil, err
	}
	if storage.Scale != nil {
		if scaleScope.FieldManager, err = fieldManager(typeConverter, &scaleScope, nil, "scale"); err != nil {
			return nil, err
		}
	}
	sv.scale = &scaleScope

	if v.Deprecated {
		sv.warnings = []string{deprecation(crd, v)}
	}
	return sv, nil
}

// ageColumn is the column of a CRD version that names none.
var ageColumn = apiextensionsv1.CustomResourceColumnDefinition{
	Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp",
	Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"],
}

// scaleColumns are the columns of a Scale table: desired and actual replicas.
func scaleColumns(v *apiextensionsv1.CustomResourceDefinitionVersion) []apiextensionsv1.CustomResourceColumnDefinition {
	var cols []apiextensionsv1.CustomResourceColumnDefinition
	if sub := v.Subresources; sub != nil && sub.Scale != nil {
		cols = append(cols,
			apiextensionsv1.CustomResourceColumnDefinition{Name: "Desired", Type: "integer", JSONPath: ".spec.replicas", Description: "Number of desired replicas"},
			apiextensionsv1.CustomResourceColumnDefinition{Name: "Available", Type: "integer", JSONPath: ".status.replicas", Description: "Number of actual replicas"})
	}
	return append(cols, ageColumn)
}

func fieldManager(tc managedfields.TypeConverter, scope *handlers.RequestScope, reset map[fieldpath.APIVersion]*fieldpath.Set, subresource string) (*managedfields.FieldManager, error) {
	return managedfields.NewDefaultCRDFieldManager(tc, scope.Convertor, scope.Defaulter, scope.Creater, scope.Kind, scope.HubGroupVersion,
		subresource, fieldpath.NewExcludeFilterSetMap(reset))
}

// deprecation is the warning a deprecated version is served with.
func deprecation(crd *apiextensionsv1.CustomResourceDefinition, v *apiextensionsv1.CustomResourceDefinitionVersion) string {
	if v.DeprecationWarning != nil {
		return *v.DeprecationWarning
	}
	msg := fmt.Sprintf("%s/%s %s is deprecated", crd.Spec.Group, v.Name, crd.Spec.Names.Kind)
	var newer []string
	for _, other := range crd.Spec.Versions {
		if other.Served && !other.Deprecated && version.CompareKubeAwareVersionStrings(v.Name, other.Name) < 0 {
			newer = append(newer, other.Name)
		}
	}
	if len(newer) == 0 {
		return msg
	}
	sort.Slice(newer, func(i, j int) bool { return version.CompareKubeAwareVersionStrings(newer[i], newer[j]) > 0 })
	return fmt.Sprintf("%s; use %s/%s %s", msg, crd.Spec.Group, newer[0], crd.Spec.Names.Kind)
}

// storageOptions give a custom resource store warren's storage with the
// custom resource's own codec.
type storageOptions struct {
	generic.RESTOptionsGetter
	codec runtime.Codec
	// prefix replaces the resource's storage prefix unless empty.
	prefix string
}

func (o *storageOptions) GetRESTOptions(resource schema.GroupResource, _ runtime.Object) (generic.RESTOptions, error) {
	opts, err := o.RESTOptionsGetter.GetRESTOptions(resource, nil)
	if err != nil {
		return opts, err
	}
	opts.StorageConfig.Codec = o.codec
	if o.prefix != "" {
		opts.ResourcePrefix = o.prefix
	}
	return opts, nil
}
