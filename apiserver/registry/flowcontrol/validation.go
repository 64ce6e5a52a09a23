package flowcontrol

import (
	"math"
	"slices"
	"strings"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxHashBits bounds how much of a flow's hash shuffle sharding consumes:
// handSize draws from queues, each draw taking log2(queues) bits of 64.
// maxQueues bounds the queues every server allocates for a priority level.
const (
	maxHashBits = 60
	maxQueues   = 10_000_000
)

func validateFlowSchema(fs *flowcontrolv1.FlowSchema) field.ErrorList {
	spec, p := fs.Spec, field.NewPath("spec")
	var errs field.ErrorList
	if m := spec.MatchingPrecedence; m < 1 || m > 10000 {
		errs = append(errs, field.Invalid(p.Child("matchingPrecedence"), m, "must be between 1 and 10000, inclusive"))
	} else if m == 1 && fs.Name != flowcontrolv1.FlowSchemaNameExempt {
		// Schemas of equal precedence match in the order of their names.
		errs = append(errs, field.Invalid(p.Child("matchingPrecedence"), m, `1 is the "exempt" schema's: it must match first`))
	}
	pl := p.Child("priorityLevelConfiguration", "name")
	if spec.PriorityLevelConfiguration.Name == "" {
		errs = append(errs, field.Required(pl, "must reference a priority level"))
	} else {
		for _, msg := range path.IsValidPathSegmentName(spec.PriorityLevelConfiguration.Name) {
			errs = append(errs, field.Invalid(pl, spec.PriorityLevelConfiguration.Name, msg))
		}
	}
	if d := spec.DistinguisherMethod; d != nil && d.Type != flowcontrolv1.FlowDistinguisherMethodByUserType && d.Type != flowcontrolv1.FlowDistinguisherMethodByNamespaceType {
		errs = append(errs, field.NotSupported(p.Child("distinguisherMethod", "type"), d.Type,
			[]flowcontrolv1.FlowDistinguisherMethodType{flowcontrolv1.FlowDistinguisherMethodByUserType, flowcontrolv1.FlowDistinguisherMethodByNamespaceType}))
	}
	for i, rule := range spec.Rules {
		errs = append(errs, validateRule(rule, p.Child("rules").Index(i))...)
	}
	return errs
}

func validateRule(rule flowcontrolv1.PolicyRulesWithSubjects, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(rule.Subjects) == 0 {
		errs = append(errs, field.Required(p.Child("subjects"), "at least one subject"))
	}
	for i, s := range rule.Subjects {
		errs = append(errs, validateSubject(s, p.Child("subjects").Index(i))...)
	}
	if len(rule.ResourceRules) == 0 && len(rule.NonResourceRules) == 0 {
		errs = append(errs, field.Required(p, "at least one of resourceRules and nonResourceRules"))
	}
	for i, r := range rule.ResourceRules {
		rp := p.Child("resourceRules").Index(i)
		errs = append(errs, validateList(rp.Child("verbs"), r.Verbs, flowcontrolv1.VerbAll)...)
		errs = append(errs, validateList(rp.Child("apiGroups"), r.APIGroups, flowcontrolv1.APIGroupAll)...)
		errs = append(errs, validateList(rp.Child("resources"), r.Resources, flowcontrolv1.ResourceAll)...)
		if len(r.Namespaces) == 0 && !r.ClusterScope {
			errs = append(errs, field.Required(rp.Child("namespaces"), "namespaces or clusterScope"))
		}
		if len(r.Namespaces) > 0 {
			errs = append(errs, validateList(rp.Child("namespaces"), r.Namespaces, flowcontrolv1.NamespaceEvery)...)
		}
		for j, ns := range r.Namespaces {
			if ns == flowcontrolv1.NamespaceEvery {
				continue
			}
			for _, msg := range apivalidation.ValidateNamespaceName(ns, false) {
				errs = append(errs, field.Invalid(rp.Child("namespaces").Index(j), ns, msg))
			}
		}
	}
	for i, r := range rule.NonResourceRules {
		rp := p.Child("nonResourceRules").Index(i)
		errs = append(errs, validateList(rp.Child("verbs"), r.Verbs, flowcontrolv1.VerbAll)...)
		errs = append(errs, validateList(rp.Child("nonResourceURLs"), r.NonResourceURLs, flowcontrolv1.NonResourceAll)...)
		for j, u := range r.NonResourceURLs {
			if u != flowcontrolv1.NonResourceAll && !strings.HasPrefix(u, "/") {
				errs = append(errs, field.Invalid(rp.Child("nonResourceURLs").Index(j), u, `must be "*" or start with "/"`))
			}
		}
	}
	return errs
}

// validateList requires a value and allows the wildcard only alone.
func validateList(p *field.Path, values []string, wildcard string) field.ErrorList {
	if len(values) == 0 {
		return field.ErrorList{field.Required(p, "at least one value")}
	}
	if len(values) > 1 && slices.Contains(values, wildcard) {
		return field.ErrorList{field.Invalid(p, values, `if "`+wildcard+`" is present, it must be the only value`)}
	}
	return nil
}

func validateSubject(s flowcontrolv1.Subject, p *field.Path) field.ErrorList {
	set := 0
	for _, member := range []bool{s.User != nil, s.Group != nil, s.ServiceAccount != nil} {
		if member {
			set++
		}
	}
	var errs field.ErrorList
	switch s.Kind {
	case flowcontrolv1.SubjectKindUser:
		if s.User == nil || s.User.Name == "" {
			errs = append(errs, field.Required(p.Child("user", "name"), "the user's name, or \"*\""))
		}
	case flowcontrolv1.SubjectKindGroup:
		if s.Group == nil || s.Group.Name == "" {
			errs = append(errs, field.Required(p.Child("group", "name"), "the group's name, or \"*\""))
		}
	case flowcontrolv1.SubjectKindServiceAccount:
		if s.ServiceAccount == nil || s.ServiceAccount.Namespace == "" || s.ServiceAccount.Name == "" {
			errs = append(errs, field.Required(p.Child("serviceAccount"), "the service account's namespace and name (or \"*\")"))
		}
	default:
		return field.ErrorList{field.NotSupported(p.Child("kind"), s.Kind,
			[]flowcontrolv1.SubjectKind{flowcontrolv1.SubjectKindUser, flowcontrolv1.SubjectKindGroup, flowcontrolv1.SubjectKindServiceAccount})}
	}
	if set > 1 {
		errs = append(errs, field.Forbidden(p, "exactly one of user, group and serviceAccount, the one its kind names"))
	}
	return errs
}

func validatePriorityLevel(pl *flowcontrolv1.PriorityLevelConfiguration) field.ErrorList {
	spec, p := pl.Spec, field.NewPath("spec")
	var errs field.ErrorList
	exempt := pl.Name == flowcontrolv1.PriorityLevelConfigurationNameExempt
	switch spec.Type {
	case flowcontrolv1.PriorityLevelEnablementExempt:
		if !exempt {
			errs = append(errs, field.Invalid(p.Child("type"), spec.Type, `only the priority level "exempt" is Exempt`))
		}
		if spec.Limited != nil {
			errs = append(errs, field.Forbidden(p.Child("limited"), "must be empty when type is Exempt"))
		}
		if e := spec.Exempt; e != nil {
			errs = append(errs, validateShares(p.Child("exempt"), e.NominalConcurrencyShares, e.LendablePercent)...)
		}
	case flowcontrolv1.PriorityLevelEnablementLimited:
		if exempt {
			errs = append(errs, field.Invalid(p.Child("type"), spec.Type, `the priority level "exempt" must be Exempt`))
		}
		if spec.Exempt != nil {
			errs = append(errs, field.Forbidden(p.Child("exempt"), "must be empty when type is Limited"))
		}
		if spec.Limited == nil {
			errs = append(errs, field.Required(p.Child("limited"), "must not be empty when type is Limited"))
		} else {
			errs = append(errs, validateLimited(spec.Limited, p.Child("limited"))...)
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("type"), spec.Type,
			[]flowcontrolv1.PriorityLevelEnablement{flowcontrolv1.PriorityLevelEnablementExempt, flowcontrolv1.PriorityLevelEnablementLimited}))
	}
	return errs
}

func validateShares(p *field.Path, shares, lendable *int32) field.ErrorList {
	var errs field.ErrorList
	if shares != nil && *shares < 0 {
		errs = append(errs, field.Invalid(p.Child("nominalConcurrencyShares"), *shares, "must be a non-negative integer"))
	}
	if lendable != nil && (*lendable < 0 || *lendable > 100) {
		errs = append(errs, field.Invalid(p.Child("lendablePercent"), *lendable, "must be between 0 and 100, inclusive"))
	}
	return errs
}

func validateLimited(l *flowcontrolv1.LimitedPriorityLevelConfiguration, p *field.Path) field.ErrorList {
	errs := validateShares(p, l.NominalConcurrencyShares, l.LendablePercent)
	if b := l.BorrowingLimitPercent; b != nil && *b < 0 {
		errs = append(errs, field.Invalid(p.Child("borrowingLimitPercent"), *b, "must be a non-negative integer"))
	}
	rp := p.Child("limitResponse")
	switch l.LimitResponse.Type {
	case flowcontrolv1.LimitResponseTypeReject:
		if l.LimitResponse.Queuing != nil {
			errs = append(errs, field.Forbidden(rp.Child("queuing"), "must be empty when type is Reject"))
		}
	case flowcontrolv1.LimitResponseTypeQueue:
		q := l.LimitResponse.Queuing
		if q == nil {
			return append(errs, field.Required(rp.Child("queuing"), "must not be empty when type is Queue"))
		}
		qp := rp.Child("queuing")
		for _, f := range []struct {
			name  string
			value int32
		}{{"queues", q.Queues}, {"handSize", q.HandSize}, {"queueLengthLimit", q.QueueLengthLimit}} {
			if f.value <= 0 {
				errs = append(errs, field.Invalid(qp.Child(f.name), f.value, "must be positive"))
			}
		}
		if q.Queues > maxQueues {
			errs = append(errs, field.Invalid(qp.Child("queues"), q.Queues, "must not be greater than 10000000"))
		}
		if q.HandSize > q.Queues {
			errs = append(errs, field.Invalid(qp.Child("handSize"), q.HandSize, "must not be greater than queues"))
		} else if q.Queues > 0 && q.HandSize > 0 && float64(q.HandSize)*math.Log2(float64(q.Queues)) > maxHashBits {
			errs = append(errs, field.Invalid(qp.Child("handSize"), q.HandSize,
				"shuffle sharding needs more than 60 bits of a flow's hash: fewer queues or a smaller hand"))
		}
	default:
		errs = append(errs, field.NotSupported(rp.Child("type"), l.LimitResponse.Type,
			[]flowcontrolv1.LimitResponseType{flowcontrolv1.LimitResponseTypeQueue, flowcontrolv1.LimitResponseTypeReject}))
	}
	return errs
}
