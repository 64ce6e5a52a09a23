package tenancy

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	conditionsv1alpha1 "github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1"
	"github.com/kcp-dev/sdk/apis/third_party/conditions/util/conditions"
)

// claimKey identifies a permission claim as kcp does: by resource, group and
// identity, whatever its verbs.
func claimKey(c apisv1alpha2.PermissionClaim) string {
	return c.Resource + "/" + c.Group + "/" + c.IdentityHash
}

// permissionClaims records what binding's accepted permission claims grant
// the provider of export: those of the export's claims it accepted, each with
// the binding's selector, in status.appliedPermissionClaims, in kcp's order.
// An accepted claim the export does not make is invalid, and one accepted
// with other verbs than the export's (neither "*"), or another selector than
// the export's default, is a mismatch (the provider gets the verbs of both);
// kcp's PermissionClaimsValid says so. warren decides what a
// claim shows the provider when it reads, so every valid claim is applied at
// once (PermissionClaimsApplied).
func permissionClaims(binding *apisv1alpha2.APIBinding, export *apisv1alpha2.APIExport) {
	exported := map[string]apisv1alpha2.PermissionClaim{}
	for _, c := range export.Spec.PermissionClaims {
		exported[claimKey(c)] = c
	}
	var applied []apisv1alpha2.ScopedPermissionClaim
	var invalid, mismatched []string
	for _, c := range binding.Spec.PermissionClaims {
		if c.State != apisv1alpha2.ClaimAccepted {
			continue
		}
		e, ok := exported[claimKey(c.PermissionClaim)]
		if !ok {
			invalid = append(invalid, fmt.Sprintf("unexpected/invalid claim for %s.%s (identity %q)", c.Resource, c.Group, c.IdentityHash))
			continue
		}
		applied = append(applied, c.ScopedPermissionClaim)
		var differ []string
		if !slices.Contains(c.Verbs, "*") && !slices.Contains(e.Verbs, "*") && !sameVerbs(c.Verbs, e.Verbs) {
			differ = append(differ, fmt.Sprintf("verbs: accepted %v, exported %v", c.Verbs, e.Verbs))
		}
		if e.DefaultSelector != nil && !equality.Semantic.DeepEqual(c.Selector, *e.DefaultSelector) {
			differ = append(differ, "selector differs from defaultSelector")
		}
		if len(differ) > 0 {
			mismatched = append(mismatched, fmt.Sprintf("%s.%s (%s)", c.Resource, c.Group, strings.Join(differ, "; ")))
		}
	}
	slices.SortFunc(applied, func(a, b apisv1alpha2.ScopedPermissionClaim) int {
		return strings.Compare(claimKey(a.PermissionClaim), claimKey(b.PermissionClaim))
	})
	binding.Status.AppliedPermissionClaims = applied
	switch {
	case len(invalid) > 0:
		shown := invalid[:min(len(invalid), 10)]
		conditions.MarkFalse(binding, apisv1alpha2.PermissionClaimsValid, apisv1alpha2.InvalidPermissionClaimsReason, conditionsv1alpha1.ConditionSeverityError,
			"%d unexpected and/or invalid permission claims (showing first %d): %s", len(invalid), len(shown), strings.Join(shown, ", "))
	case len(mismatched) > 0:
		shown := mismatched[:min(len(mismatched), 5)]
		conditions.MarkFalse(binding, apisv1alpha2.PermissionClaimsValid, apisv1alpha2.PermissionClaimsMismatchReason, conditionsv1alpha1.ConditionSeverityWarning,
			"%d permission claim(s) have mismatched verbs or selectors (showing first %d): %s", len(mismatched), len(shown), strings.Join(shown, ", "))
	default:
		conditions.MarkTrue(binding, apisv1alpha2.PermissionClaimsValid)
	}
	conditions.MarkTrue(binding, apisv1alpha2.PermissionClaimsApplied)
}

// claimsApplied tells whether status.appliedPermissionClaims of binding are
// its accepted claims, as they are once permissionClaims ran after its last
// change (unless it accepts a claim its export does not make).
func claimsApplied(binding *apisv1alpha2.APIBinding) bool {
	applied := binding.Status.AppliedPermissionClaims
	accepted := 0
	for _, c := range binding.Spec.PermissionClaims {
		if c.State != apisv1alpha2.ClaimAccepted {
			continue
		}
		accepted++
		if !slices.ContainsFunc(applied, func(a apisv1alpha2.ScopedPermissionClaim) bool {
			return equality.Semantic.DeepEqual(a, c.ScopedPermissionClaim)
		}) {
			return false
		}
	}
	return accepted == len(applied)
}

// sameVerbs tells whether two claims' verbs are the same set.
func sameVerbs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// ClaimVerbs are the verbs the claim of a binding grants of those the export
// claims: the verbs of both, "*" standing for any.
func ClaimVerbs(accepted, exported []string) []string {
	switch {
	case slices.Contains(exported, "*"):
		return accepted
	case slices.Contains(accepted, "*"):
		return exported
	}
	return slices.DeleteFunc(slices.Clone(accepted), func(v string) bool { return !slices.Contains(exported, v) })
}
