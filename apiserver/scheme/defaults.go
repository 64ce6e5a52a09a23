package scheme

import (
	"cmp"

	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// addDefaults registers the defaulting Kubernetes applies to the v1 types when it
// decodes them.
func addDefaults(s *runtime.Scheme) error {
	s.AddTypeDefaultingFunc(&corev1.Secret{}, func(obj any) {
		if secret := obj.(*corev1.Secret); secret.Type == "" {
			secret.Type = corev1.SecretTypeOpaque
		}
	})
	s.AddTypeDefaultingFunc(&rbacv1.RoleBinding{}, func(obj any) {
		b := obj.(*rbacv1.RoleBinding)
		defaultBinding(&b.RoleRef, b.Subjects)
	})
	s.AddTypeDefaultingFunc(&rbacv1.ClusterRoleBinding{}, func(obj any) {
		b := obj.(*rbacv1.ClusterRoleBinding)
		defaultBinding(&b.RoleRef, b.Subjects)
	})
	s.AddTypeDefaultingFunc(&flowcontrolv1.FlowSchema{}, func(obj any) {
		if fs := obj.(*flowcontrolv1.FlowSchema); fs.Spec.MatchingPrecedence == 0 {
			fs.Spec.MatchingPrecedence = 1000
		}
	})
	s.AddTypeDefaultingFunc(&flowcontrolv1.PriorityLevelConfiguration{}, func(obj any) {
		defaultPriorityLevel(&obj.(*flowcontrolv1.PriorityLevelConfiguration).Spec)
	})
	return nil
}

// defaultPriorityLevel fills in what flowcontrol.apiserver.k8s.io/v1 leaves
// out: a limited level's 30 shares, lending nothing, and 64 queues of 50
// requests with hands of 8; an exempt level's zero shares.
func defaultPriorityLevel(spec *flowcontrolv1.PriorityLevelConfigurationSpec) {
	if e := spec.Exempt; e != nil {
		e.NominalConcurrencyShares = cmpOr(e.NominalConcurrencyShares, 0)
		e.LendablePercent = cmpOr(e.LendablePercent, 0)
	}
	l := spec.Limited
	if l == nil {
		return
	}
	l.NominalConcurrencyShares = cmpOr(l.NominalConcurrencyShares, 30)
	l.LendablePercent = cmpOr(l.LendablePercent, 0)
	if q := l.LimitResponse.Queuing; q != nil {
		q.Queues = cmp.Or(q.Queues, 64)
		q.HandSize = cmp.Or(q.HandSize, 8)
		q.QueueLengthLimit = cmp.Or(q.QueueLengthLimit, 50)
	}
}

// cmpOr returns v, or a pointer to def if v is nil.
func cmpOr(v *int32, def int32) *int32 {
	if v == nil {
		return ptr.To(def)
	}
	return v
}

func defaultBinding(ref *rbacv1.RoleRef, subjects []rbacv1.Subject) {
	if ref.APIGroup == "" {
		ref.APIGroup = rbacv1.GroupName
	}
	for i := range subjects {
		s := &subjects[i]
		if s.APIGroup != "" {
			continue
		}
		switch s.Kind {
		case rbacv1.UserKind, rbacv1.GroupKind:
			s.APIGroup = rbacv1.GroupName
		}
	}
}
