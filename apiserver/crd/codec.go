package crd

import (
	"fmt"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/crdserverscheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1beta1 "k8s.io/apimachinery/pkg/apis/meta/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/runtime/serializer/versioning"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/warren-dev/warren/apiserver/coalesce"
)

// codecScheme types what custom resource requests carry besides custom
// resources: options, Status, watch events, tables. Status and watch events are
// unversioned here, so encoding them for a custom resource's version converts
// nothing (the converters only know custom resources).
var codecScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	v1 := schema.GroupVersion{Version: "v1"}
	metav1.AddToGroupVersion(s, v1)
	utilruntime.Must(metav1.AddMetaToScheme(s))
	utilruntime.Must(metav1beta1.AddMetaToScheme(s))
	s.AddUnversionedTypes(v1, &metav1.WatchEvent{})
	return s
}()

// schemas are the structural schemas of one custom resource kind, by version.
type schemas struct {
	kind            schema.GroupKind
	byVersion       map[string]*structuralschema.Structural
	preserveUnknown bool
}

// coercion says how strictly objects are brought into their schema's shape.
type coercion struct {
	// repair drops malformed metadata, for objects read back from storage.
	repair bool
	// report returns the paths of pruned unknown fields, for strict decoding.
	report bool
}

// coerce does to a custom resource what decoding into a Go struct does to a
// built-in one: it normalizes metadata and prunes fields its schema does not
// know (unless the CRD preserves them) and nulls it does not allow. Objects of
// other kinds (options, Status) only have their metadata normalized.
func (s *schemas) coerce(u *unstructured.Unstructured, how coercion) (unknown []string, err error) {
	kind, hasKind, err := unstructured.NestedString(u.Object, "kind")
	if err != nil {
		return nil, err
	}
	apiVersion, hasAPIVersion, err := unstructured.NestedString(u.Object, "apiVersion")
	if err != nil {
		return nil, err
	}
	metadata, hasMetadata, unknown, err := schemaobjectmeta.GetObjectMetaWithOptions(u.Object, schemaobjectmeta.ObjectMetaOptions{
		DropMalformedFields: how.repair, ReturnUnknownFieldPaths: how.report,
	})
	if err != nil {
		return nil, err
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	if (schema.GroupKind{Group: gv.Group, Kind: kind}) == s.kind {
		structural := s.byVersion[gv.Version]
		if !s.preserveUnknown {
			pruned := structuralpruning.PruneWithOptions(u.Object, structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: how.report})
			unknown = append(unknown, pruned...)
			structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u.Object, structural)
		}
		err, dropped := schemaobjectmeta.CoerceWithOptions(nil, u.Object, structural, false, schemaobjectmeta.CoerceOptions{
			DropInvalidFields: how.repair, ReturnUnknownFieldPaths: how.report,
		})
		if err != nil {
			return nil, err
		}
		unknown = append(unknown, dropped...)
		if how.repair && metadata.Generation == 0 {
			metadata.Generation = 1 // objects written before generations existed
		}
	}
	// Put back what pruning and coercion must not touch.
	if hasKind {
		u.SetKind(kind)
	}
	if hasAPIVersion {
		u.SetAPIVersion(apiVersion)
	}
	if hasMetadata {
		if err := schemaobjectmeta.SetObjectMeta(u.Object, metadata); err != nil {
			return nil, err
		}
	}
	return unknown, nil
}

// Default sets the defaults of a custom resource's schema; other objects get
// the scheme's defaults.
func (s *schemas) Default(obj runtime.Object) {
	u, ok := obj.(runtime.Unstructured)
	if !ok || u.GetObjectKind().GroupVersionKind().GroupKind() != s.kind {
		codecScheme.Default(obj)
		return
	}
	structuraldefaulting.Default(u.UnstructuredContent(), s.byVersion[u.GetObjectKind().GroupVersionKind().Version])
}

// coercingDecoder decodes with a delegate, then coerces custom resources into
// their schema; when how.report is set, unknown fields are a strict decoding
// error (with the object, so fieldValidation=Warn can still use it).
type coercingDecoder struct {
	delegate runtime.Decoder
	schemas  *schemas
	how      coercion
}

func (d coercingDecoder) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	obj, gvk, err := d.delegate.Decode(data, defaults, into)
	var strict []error
	if err != nil {
		s, ok := runtime.AsStrictDecodingError(err)
		if !ok || obj == nil {
			return nil, gvk, err
		}
		strict = s.Errors()
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		unknown, err := d.schemas.coerce(u, d.how)
		if err != nil {
			return nil, gvk, err
		}
		for _, path := range unknown {
			strict = append(strict, fmt.Errorf("unknown field %q", path))
		}
	}
	if d.how.report && len(strict) > 0 {
		return obj, gvk, runtime.NewStrictDecodingError(strict)
	}
	return obj, gvk, nil
}

// coercingConverter converts between versions of a custom resource, then
// coerces the result into the target version's schema.
type coercingConverter struct {
	runtime.ObjectConvertor
	schemas *schemas
}

func (c coercingConverter) Convert(in, out, context any) error {
	if err := c.ObjectConvertor.Convert(in, out, context); err != nil {
		return err
	}
	if u, ok := out.(*unstructured.Unstructured); ok {
		if _, err := c.schemas.coerce(u, coercion{}); err != nil {
			return err
		}
	}
	return nil
}

func (c coercingConverter) ConvertToVersion(in runtime.Object, gv runtime.GroupVersioner) (runtime.Object, error) {
	out, err := c.ObjectConvertor.ConvertToVersion(in, gv)
	if err != nil {
		return nil, err
	}
	if u, ok := out.(*unstructured.Unstructured); ok {
		if _, err := c.schemas.coerce(u, coercion{}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// creator makes empty unstructured objects of any kind.
type creator struct{}

func (creator) New(kind schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kind)
	return u, nil
}

// typer tells the kind of unstructured objects from their content and of the
// request parameter types from params.
type typer struct {
	params       runtime.ObjectTyper
	unstructured runtime.ObjectTyper
}

func newTyper(params runtime.ObjectTyper) typer {
	return typer{params: params, unstructured: crdserverscheme.NewUnstructuredObjectTyper()}
}

func (t typer) ObjectKinds(obj runtime.Object) ([]schema.GroupVersionKind, bool, error) {
	if _, ok := obj.(runtime.Unstructured); ok {
		return t.unstructured.ObjectKinds(obj)
	}
	return t.params.ObjectKinds(obj)
}

func (t typer) Recognizes(gvk schema.GroupVersionKind) bool {
	return t.params.Recognizes(gvk) || t.unstructured.Recognizes(gvk)
}

// serializers negotiate the wire forms of one custom resource version: JSON and
// YAML for the objects (custom resources have no protobuf form), protobuf too
// for what the server makes of them (tables, partial metadata, Status).
type serializers struct {
	media     []runtime.SerializerInfo
	converter runtime.ObjectConvertor
	schemas   *schemas
}

var _ runtime.NegotiatedSerializer = (*serializers)(nil)

func newSerializers(t runtime.ObjectTyper, converter runtime.ObjectConvertor, s *schemas) *serializers {
	c := creator{}
	jsonWith := func(o json.SerializerOptions) *json.Serializer {
		return json.NewSerializerWithOptions(json.DefaultMetaFactory, c, t, o)
	}
	return &serializers{
		converter: converter,
		schemas:   s,
		media: []runtime.SerializerInfo{{
			MediaType: runtime.ContentTypeJSON, MediaTypeType: "application", MediaTypeSubType: "json",
			EncodesAsText:    true,
			Serializer:       jsonWith(json.SerializerOptions{StreamingCollectionsEncoding: true}),
			PrettySerializer: jsonWith(json.SerializerOptions{Pretty: true}),
			StrictSerializer: jsonWith(json.SerializerOptions{Strict: true, StreamingCollectionsEncoding: true}),
			StreamSerializer: &runtime.StreamSerializerInfo{EncodesAsText: true, Serializer: jsonWith(json.SerializerOptions{}), Framer: json.Framer},
		}, {
			MediaType: runtime.ContentTypeYAML, MediaTypeType: "application", MediaTypeSubType: "yaml",
			EncodesAsText:    true,
			Serializer:       jsonWith(json.SerializerOptions{Yaml: true}),
			StrictSerializer: jsonWith(json.SerializerOptions{Yaml: true, Strict: true}),
		}, {
			MediaType: runtime.ContentTypeProtobuf, MediaTypeType: "application", MediaTypeSubType: "vnd.kubernetes.protobuf",
			Serializer:       protobuf.NewSerializerWithOptions(c, t, protobuf.SerializerOptions{StreamingCollectionsEncoding: true}),
			StreamSerializer: &runtime.StreamSerializerInfo{Serializer: protobuf.NewRawSerializer(c, t), Framer: protobuf.LengthDelimitedFramer},
		}},
	}
}

func (s *serializers) SupportedMediaTypes() []runtime.SerializerInfo { return s.media }

func (s *serializers) EncoderForVersion(encoder runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	return coalesce.Encoder(versioning.NewCodec(encoder, nil, s.converter, codecScheme, codecScheme, codecScheme, gv, nil, "customresource"))
}

// DecoderToVersion coerces what it decodes; a strict decoder (chosen by the
// handlers for fieldValidation Strict and Warn) reports unknown fields.
func (s *serializers) DecoderToVersion(decoder runtime.Decoder, gv runtime.GroupVersioner) runtime.Decoder {
	strict := false
	if j, ok := decoder.(*json.Serializer); ok {
		strict = j.IsStrict()
	}
	d := coercingDecoder{delegate: decoder, schemas: s.schemas, how: coercion{report: strict}}
	return versioning.NewCodec(nil, d, runtime.UnsafeObjectConvertor(codecScheme), codecScheme, codecScheme, s.schemas, nil, gv, "customresource")
}

// storageCodec stores custom resources as JSON in the storage version and reads
// them back in version, converted, coerced and defaulted.
func storageCodec(converter runtime.ObjectConvertor, s *schemas, storage, version schema.GroupVersion) runtime.Codec {
	return versioning.NewCodec(
		unstructured.UnstructuredJSONScheme,
		coercingDecoder{delegate: unstructured.UnstructuredJSONScheme, schemas: s, how: coercion{repair: true}},
		coercingConverter{ObjectConvertor: converter, schemas: s},
		creator{}, crdserverscheme.NewUnstructuredObjectTyper(), s,
		storage, version, "customresource-storage",
	)
}
