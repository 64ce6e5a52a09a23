package authorization

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// allows reports whether rule grants the request, with the matching semantics of
// Kubernetes RBAC: "*" matches anything; "*/sub" any resource's subresource sub;
// "res/*" any subresource of res; a non-resource URL ending in "*" a prefix.
func allows(a authorizer.Attributes, rule *rbacv1.PolicyRule) bool {
	if !matchesAny(rule.Verbs, a.GetVerb()) {
		return false
	}
	if !a.IsResourceRequest() {
		return urlMatches(rule.NonResourceURLs, a.GetPath())
	}
	return matchesAny(rule.APIGroups, a.GetAPIGroup()) &&
		resourceMatches(rule.Resources, a.GetResource(), a.GetSubresource()) &&
		(len(rule.ResourceNames) == 0 || contains(rule.ResourceNames, a.GetName()))
}

func matchesAny(set []string, s string) bool {
	for _, v := range set {
		if v == rbacv1.VerbAll || v == s {
			return true
		}
	}
	return false
}

func contains(set []string, s string) bool {
	for _, v := range set {
		if v == s {
			return true
		}
	}
	return false
}

func resourceMatches(set []string, resource, subresource string) bool {
	combined := resource
	if subresource != "" {
		combined = resource + "/" + subresource
	}
	for _, r := range set {
		switch {
		case r == rbacv1.ResourceAll, r == combined:
			return true
		case subresource != "" && r == "*/"+subresource:
			return true
		case subresource != "" && r == resource+"/*":
			return true
		}
	}
	return false
}

func urlMatches(set []string, path string) bool {
	for _, u := range set {
		if u == rbacv1.NonResourceAll || u == path {
			return true
		}
		if prefix, ok := strings.CutSuffix(u, "*"); ok && strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}
