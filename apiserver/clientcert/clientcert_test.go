package clientcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
)

// ca is a certificate authority of the test.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	return ca{cert: sign(t, tmpl, tmpl, &key.PublicKey, key), key: key}
}

// client issues a client certificate for user, valid until notAfter.
func (c ca) client(t *testing.T, user string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: user, Organization: []string{"devs"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return sign(t, tmpl, c.cert, &key.PublicKey, c.key)
}

func sign(t *testing.T, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// roots is a CA bundle that can be replaced, as a reloaded --client-ca-file.
type roots struct {
	opts atomic.Pointer[x509.VerifyOptions]
}

func (r *roots) set(cas ...ca) {
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c.cert)
	}
	r.opts.Store(&x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

func (r *roots) options() (x509.VerifyOptions, bool) { return *r.opts.Load(), true }

// counted is upstream's x509 authenticator, counting the chains it verifies.
type counted struct {
	next     authenticator.Request
	verified atomic.Int32
}

func (c *counted) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	c.verified.Add(1)
	return c.next.AuthenticateRequest(req)
}

func request(cert *x509.Certificate) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "https://warren/api", nil)
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	return req
}

func setUp(t *testing.T, cas ...ca) (*Remembered, *counted, *roots) {
	r := &roots{}
	r.set(cas...)
	upstream := &counted{next: x509request.NewDynamic(r.options, x509request.CommonNameUserConversion)}
	return Remember(upstream, r.options), upstream, r
}

func authenticate(t *testing.T, a authenticator.Request, cert *x509.Certificate) (string, bool) {
	t.Helper()
	resp, ok, err := a.AuthenticateRequest(request(cert))
	if !ok || err != nil {
		return "", false
	}
	return resp.User.GetName(), true
}

func TestVerdictIsRemembered(t *testing.T) {
	c := newCA(t)
	a, upstream, _ := setUp(t, c)
	alice := c.client(t, "alice", time.Now().Add(time.Hour))
	for range 3 {
		if name, ok := authenticate(t, a, alice); !ok || name != "alice" {
			t.Fatalf("alice's certificate authenticated %q, %v", name, ok)
		}
	}
	if n := upstream.verified.Load(); n != 1 {
		t.Errorf("alice's chain was verified %d times in three requests, want once", n)
	}
	// A verdict is the user's own: changing what one request got changes
	// nothing for the next.
	resp, _, _ := a.AuthenticateRequest(request(alice))
	resp.User.GetGroups()[0] = "system:masters"
	resp, _, _ = a.AuthenticateRequest(request(alice))
	if g := resp.User.GetGroups(); len(g) != 1 || g[0] != "devs" {
		t.Errorf("alice's groups after another request changed its own: %v", g)
	}
	bob := c.client(t, "bob", time.Now().Add(time.Hour))
	if name, ok := authenticate(t, a, bob); !ok || name != "bob" {
		t.Errorf("bob's certificate authenticated %q, %v", name, ok)
	}
}

func TestRefusalIsNotRemembered(t *testing.T) {
	trusted, other := newCA(t), newCA(t)
	a, upstream, _ := setUp(t, trusted)
	mallory := other.client(t, "mallory", time.Now().Add(time.Hour))
	for range 2 {
		if _, ok := authenticate(t, a, mallory); ok {
			t.Fatal("a certificate of an unknown CA authenticated")
		}
	}
	if n := upstream.verified.Load(); n != 2 {
		t.Errorf("a refused chain was verified %d times in two requests, want twice", n)
	}
}

func TestVerdictEndsWithTheCABundle(t *testing.T) {
	old, replacement := newCA(t), newCA(t)
	a, _, bundle := setUp(t, old)
	alice := old.client(t, "alice", time.Now().Add(time.Hour))
	if _, ok := authenticate(t, a, alice); !ok {
		t.Fatal("alice's certificate did not authenticate")
	}
	bundle.set(replacement)
	if _, ok := authenticate(t, a, alice); ok {
		t.Error("a certificate of a CA removed from the bundle still authenticates")
	}
}

func TestVerdictEndsWithTheCertificate(t *testing.T) {
	c := newCA(t)
	a, upstream, _ := setUp(t, c)
	alice := c.client(t, "alice", time.Now().Add(1500*time.Millisecond))
	if _, ok := authenticate(t, a, alice); !ok {
		t.Fatal("alice's certificate did not authenticate")
	}
	time.Sleep(2 * time.Second)
	if _, ok := authenticate(t, a, alice); ok {
		t.Error("an expired certificate still authenticates")
	}
	if n := upstream.verified.Load(); n != 2 {
		t.Errorf("the chain was verified %d times, want again once it expired", n)
	}
}
