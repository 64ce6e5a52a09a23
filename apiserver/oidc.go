package apiserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	apiserverapi "k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/install"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/plugin/pkg/authenticator/token/oidc"
)

// jwtAuthenticators are upstream's JWT (OpenID Connect) authenticators of
// kube-apiserver's structured AuthenticationConfiguration in file
// (apiserver.config.k8s.io: issuers, audiences, claim mappings and
// validation rules in CEL), each fetching its issuer's keys for as long as ctx
// lasts. The issuers' users are tenants' users: a username in the reserved
// system: namespace is refused, and groups in it and extra keys of the
// server's domains are dropped, so no identity provider makes anyone an
// installation admin, a shard or a service account.
func jwtAuthenticators(ctx context.Context, file, apiServerID string) (authenticator.Token, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--authentication-config: %w", err)
	}
	scheme := runtime.NewScheme()
	install.Install(scheme)
	obj, _, err := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("--authentication-config %s: %w", file, err)
	}
	config, ok := obj.(*apiserverapi.AuthenticationConfiguration)
	if !ok {
		return nil, fmt.Errorf("--authentication-config %s holds a %T, not an AuthenticationConfiguration", file, obj)
	}
	if config.Anonymous != nil {
		return nil, fmt.Errorf("--authentication-config %s: anonymous is not configurable: warren lets anonymous requests reach health endpoints only", file)
	}
	compiler := authenticationcel.NewDefaultCompiler()
	if errs := validation.ValidateAuthenticationConfiguration(compiler, config, nil); len(errs) > 0 {
		return nil, fmt.Errorf("--authentication-config %s: %w", file, errs.ToAggregate())
	}
	var tokens []authenticator.Token
	for _, jwt := range config.JWT {
		opts := oidc.Options{JWTAuthenticator: jwt, Compiler: compiler, SupportedSigningAlgs: oidc.AllValidSigningAlgorithms(), APIServerID: apiServerID}
		if ca := jwt.Issuer.CertificateAuthority; ca != "" {
			if opts.CAContentProvider, err = dynamiccertificates.NewStaticCAContent("oidc-issuer-ca", []byte(ca)); err != nil {
				return nil, fmt.Errorf("--authentication-config %s: the certificate authority of issuer %s: %w", file, jwt.Issuer.URL, err)
			}
		}
		t, err := oidc.New(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("--authentication-config %s: issuer %s: %w", file, jwt.Issuer.URL, err)
		}
		tokens = append(tokens, t)
	}
	return tenantsOnly(tokenunion.New(tokens...)), nil
}

// tenantsOnly authenticates what a does, refusing users named in the system:
// namespace and dropping groups in it.
func tenantsOnly(a authenticator.Token) authenticator.Token {
	return authenticator.TokenFunc(func(ctx context.Context, token string) (*authenticator.Response, bool, error) {
		resp, ok, err := a.AuthenticateToken(ctx, token)
		if !ok || err != nil {
			return resp, ok, err
		}
		u := resp.User
		if strings.HasPrefix(u.GetName(), systemPrefix) {
			return nil, false, errors.New("a token of an identity provider may not name a user system:…")
		}
		groups := slices.DeleteFunc(slices.Clone(u.GetGroups()), func(g string) bool { return strings.HasPrefix(g, systemPrefix) })
		// Extra keys of Kubernetes', kcp's and warren's own domains carry what
		// only the server sets (a service account's cluster, the workspace of
		// an impersonation); upstream's validation refuses most, this all.
		extra := map[string][]string{}
		for k, v := range u.GetExtra() {
			if !slices.ContainsFunc(reservedExtraDomains, func(d string) bool { return strings.Contains(k, d) }) {
				extra[k] = v
			}
		}
		out := *resp
		out.User = &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: groups, Extra: extra}
		return &out, true, nil
	})
}

// systemPrefix starts the names of Kubernetes', kcp's and warren's own users
// and groups.
const systemPrefix = "system:"

// reservedExtraDomains are the domains of the extra keys the server sets.
var reservedExtraDomains = []string{"kubernetes.io", "k8s.io", "kcp.io", "warren.dev"}
