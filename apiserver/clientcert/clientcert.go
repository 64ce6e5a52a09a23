// Package clientcert makes the verdict of upstream's x509 authenticator on a
// client certificate chain last, as kubernetes#100902 proposes: verifying a
// chain (ECDSA signatures) on every request was a sixth of a create's CPU,
// though a client sends the same chain on every request. A verdict is kept for
// a minute at most, never past the expiry of any certificate of the verified
// chain, and only while the CA bundle is the one it was verified against; a
// refusal is never kept.
package clientcert

import (
	"crypto/sha256"
	"crypto/x509"
	"net/http"
	"slices"
	"time"

	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// verdictTTL bounds how long a verified client certificate chain is trusted
// without verifying it again; verdicts bounds how many are remembered.
const (
	verdictTTL = time.Minute
	verdicts   = 4096
)

// Remembered is an authenticator of client certificates that remembers its
// verdicts.
type Remembered struct {
	next    authenticator.Request
	options func() (x509.VerifyOptions, bool)
	cache   *utilcache.LRUExpireCache
}

// Remember returns next, the x509 authenticator verifying against the CA
// bundle of options, remembering its verdicts.
func Remember(next authenticator.Request, options func() (x509.VerifyOptions, bool)) *Remembered {
	return &Remembered{next: next, options: options, cache: utilcache.NewLRUExpireCache(verdicts)}
}

// verdict is whom a chain authenticated, against which roots.
type verdict struct {
	roots *x509.CertPool
	resp  *authenticator.Response
}

func (r *Remembered) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	opts, ok := r.options()
	if !ok {
		return r.next.AuthenticateRequest(req)
	}
	key := chainKey(req.TLS.PeerCertificates)
	if v, ok := r.cache.Get(key); ok && v.(verdict).roots == opts.Roots {
		return cloneResponse(v.(verdict).resp), true, nil
	}
	resp, ok, err := r.next.AuthenticateRequest(req)
	if ok && err == nil {
		if ttl := trustedFor(req.TLS.PeerCertificates, opts); ttl > 0 {
			r.cache.Add(key, verdict{roots: opts.Roots, resp: cloneResponse(resp)}, ttl)
		}
	}
	return resp, ok, err
}

// chainKey identifies a chain by the digest of its certificates.
func chainKey(certs []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	for _, c := range certs {
		h.Write(c.Raw)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// trustedFor is how long a verdict on certs may be kept: until the first
// certificate of any chain they verify through expires, and verdictTTL at
// most. A miss is rare (once per chain and minute), so verifying once more
// here, to learn the chains, costs little.
func trustedFor(certs []*x509.Certificate, opts x509.VerifyOptions) time.Duration {
	if opts.Intermediates == nil && len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return 0
	}
	ttl := verdictTTL
	for _, chain := range chains {
		for _, c := range chain {
			ttl = min(ttl, time.Until(c.NotAfter))
		}
	}
	return ttl
}

// cloneResponse copies resp, so that no later filter's change to a user's
// groups or extra reaches a verdict shared by requests.
func cloneResponse(resp *authenticator.Response) *authenticator.Response {
	u := resp.User
	extra := make(map[string][]string, len(u.GetExtra()))
	for k, v := range u.GetExtra() {
		extra[k] = slices.Clone(v)
	}
	return &authenticator.Response{
		Audiences: slices.Clone(resp.Audiences),
		User:      &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: slices.Clone(u.GetGroups()), Extra: extra},
	}
}
