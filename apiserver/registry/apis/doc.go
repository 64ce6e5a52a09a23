// Package apis serves kcp's API-provider APIs (apis.kcp.io) with the types of
// github.com/kcp-dev/sdk: APIResourceSchemas, APIExports, APIBindings and
// APIExportEndpointSlices, in every logical cluster, as kcp serves its system
// CRDs there. APIExports and APIBindings are stored in v1alpha2 and served in
// v1alpha2 and v1alpha1, converted by the sdk's conversion functions (data that
// only v1alpha2 holds rides in v1alpha1 as kcp's annotations); the rest exists
// in v1alpha1 only. Validation follows kcp's CRDs (schema and CEL rules), with
// field paths; what kcp's admission plugins decide is apiserver admission's.
// Status is a subresource: an update of an object keeps its status, an update
// of status keeps everything else.
package apis
