// Package flowcontrol serves flowcontrol.apiserver.k8s.io/v1 FlowSchemas and
// PriorityLevelConfigurations — the configuration of API Priority and
// Fairness — validated as Kubernetes validates them, each with its status
// subresource (which the configuration's consumer writes).
package flowcontrol
