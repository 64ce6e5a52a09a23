// Package authorization decides requests by the RBAC objects of the request's
// logical cluster.
//
// Roles and bindings of one cluster never grant anything in another: the
// authorizer reads only the cluster in the request context, and a service account
// is a subject only in the cluster it belongs to. The bootstrap roles
// (cluster-admin, admin, edit, view and the system: basics) hold in every cluster
// without being stored in any.
//
// What is kept per cluster is a snapshot of its RBAC objects, built on the
// cluster's first request and held in a bounded LRU; a watch of RBAC objects in
// all clusters drops a cluster's snapshot when any of them changes, so a cluster
// without traffic costs no memory and a change is seen within a watch delay.
package authorization
