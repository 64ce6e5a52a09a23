package tenancy

import (
	"slices"
	"testing"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	"github.com/kcp-dev/sdk/apis/third_party/conditions/util/conditions"
)

func TestClaimVerbs(t *testing.T) {
	for _, tc := range []struct {
		accepted, exported, want []string
	}{
		{[]string{"get", "list"}, []string{"get", "list", "watch"}, []string{"get", "list"}},
		{[]string{"get", "delete"}, []string{"get", "list"}, []string{"get"}},
		{[]string{"*"}, []string{"get", "list"}, []string{"get", "list"}},
		{[]string{"get"}, []string{"*"}, []string{"get"}},
		{[]string{"*"}, []string{"*"}, []string{"*"}},
		{nil, []string{"get"}, nil},
	} {
		if got := ClaimVerbs(tc.accepted, tc.exported); !slices.Equal(got, tc.want) {
			t.Errorf("ClaimVerbs(%v, %v) = %v, want %v", tc.accepted, tc.exported, got, tc.want)
		}
	}
}

// TestPermissionClaimsStatus checks what a binding's status says of its
// claims: accepted claims the export makes are applied, rejected ones are
// not, one the export does not make is invalid, other verbs are a mismatch.
func TestPermissionClaimsStatus(t *testing.T) {
	claim := func(resource, identity string, verbs ...string) apisv1alpha2.PermissionClaim {
		return apisv1alpha2.PermissionClaim{GroupResource: apisv1alpha2.GroupResource{Resource: resource}, IdentityHash: identity, Verbs: verbs}
	}
	accept := func(c apisv1alpha2.PermissionClaim, state apisv1alpha2.AcceptablePermissionClaimState) apisv1alpha2.AcceptablePermissionClaim {
		return apisv1alpha2.AcceptablePermissionClaim{ScopedPermissionClaim: apisv1alpha2.ScopedPermissionClaim{
			PermissionClaim: c, Selector: apisv1alpha2.PermissionClaimSelector{MatchAll: true}}, State: state}
	}
	export := &apisv1alpha2.APIExport{Spec: apisv1alpha2.APIExportSpec{PermissionClaims: []apisv1alpha2.PermissionClaim{
		claim("secrets", "", "get"), claim("configmaps", "", "get", "list"), claim("widgets", "abc", "list"),
	}}}
	for _, tc := range []struct {
		name    string
		claims  []apisv1alpha2.AcceptablePermissionClaim
		applied []string
		valid   string // the reason of a false PermissionClaimsValid, "" for true
	}{
		{"accepted and rejected", []apisv1alpha2.AcceptablePermissionClaim{
			accept(claim("configmaps", "", "list", "get"), apisv1alpha2.ClaimAccepted),
			accept(claim("secrets", "", "get"), apisv1alpha2.ClaimRejected),
			accept(claim("widgets", "abc", "list"), apisv1alpha2.ClaimAccepted),
		}, []string{"configmaps", "widgets"}, ""},
		{"other verbs", []apisv1alpha2.AcceptablePermissionClaim{
			accept(claim("configmaps", "", "get"), apisv1alpha2.ClaimAccepted),
		}, []string{"configmaps"}, apisv1alpha2.PermissionClaimsMismatchReason},
		{"any verb", []apisv1alpha2.AcceptablePermissionClaim{
			accept(claim("configmaps", "", "*"), apisv1alpha2.ClaimAccepted),
		}, []string{"configmaps"}, ""},
		{"not claimed by the export", []apisv1alpha2.AcceptablePermissionClaim{
			accept(claim("widgets", "other", "list"), apisv1alpha2.ClaimAccepted),
		}, nil, apisv1alpha2.InvalidPermissionClaimsReason},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &apisv1alpha2.APIBinding{Spec: apisv1alpha2.APIBindingSpec{PermissionClaims: tc.claims}}
			permissionClaims(b, export)
			var applied []string
			for _, c := range b.Status.AppliedPermissionClaims {
				applied = append(applied, c.Resource)
			}
			if !slices.Equal(applied, tc.applied) {
				t.Errorf("applied %v, want %v", applied, tc.applied)
			}
			if got := conditions.GetReason(b, apisv1alpha2.PermissionClaimsValid); conditions.IsTrue(b, apisv1alpha2.PermissionClaimsValid) != (tc.valid == "") || got != tc.valid {
				t.Errorf("PermissionClaimsValid: reason %q, want %q", got, tc.valid)
			}
			if !conditions.IsTrue(b, apisv1alpha2.PermissionClaimsApplied) {
				t.Error("PermissionClaimsApplied is not true")
			}
			if claimsApplied(b) != (tc.valid != apisv1alpha2.InvalidPermissionClaimsReason) {
				t.Errorf("claimsApplied = %v", claimsApplied(b))
			}
		})
	}
}
