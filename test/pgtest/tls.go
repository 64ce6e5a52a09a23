package pgtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	neturl "net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// TLSServer is a PostgreSQL server that takes connections over TLS only, from
// clients with a certificate of its CA whose common name is their role.
type TLSServer struct {
	// URL reaches its database postgres as role postgres, verifying the
	// server's certificate and host (sslmode=verify-full) and presenting
	// the client certificate.
	URL string
	// Plain is URL without TLS, which the server refuses.
	Plain string
	// OtherCA is URL trusting a CA that did not sign the server's
	// certificate, which the client refuses.
	OtherCA string
}

// NewTLSServer creates, as NewServer, another PostgreSQL server of this
// machine, configured with certificates of a CA made for it: TLS required,
// authentication by client certificate.
func NewTLSServer(t T) TLSServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgtls")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ca, caKey, err := newCA(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatalf("a CA for PostgreSQL: %v", err)
	}
	if _, _, err := newCA(filepath.Join(dir, "other-ca.crt")); err != nil {
		t.Fatalf("another CA: %v", err)
	}
	if err := issue(ca, caKey, x509.ExtKeyUsageClientAuth, "postgres", filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")); err != nil {
		t.Fatalf("a client certificate: %v", err)
	}
	c := newCluster(t, func(c *Cluster) error {
		conf := c.confDir()
		postgres, err := user.Lookup("postgres")
		if err != nil {
			return err
		}
		uid, _ := strconv.Atoi(postgres.Uid)
		gid, _ := strconv.Atoi(postgres.Gid)
		if err := issue(ca, caKey, x509.ExtKeyUsageServerAuth, "127.0.0.1", filepath.Join(conf, "server.crt"), filepath.Join(conf, "server.key")); err != nil {
			return err
		}
		caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(conf, "ca.crt"), caPEM, 0o600); err != nil {
			return err
		}
		for _, f := range []string{"server.crt", "server.key", "ca.crt"} {
			if err := os.Chown(filepath.Join(conf, f), uid, gid); err != nil {
				return err
			}
		}
		settings := fmt.Sprintf("ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\nssl_ca_file = '%s'\n",
			filepath.Join(conf, "server.crt"), filepath.Join(conf, "server.key"), filepath.Join(conf, "ca.crt"))
		return appendConf(c, settings, "local all all trust\nhostssl all all 127.0.0.1/32 cert\nhostnossl all all 127.0.0.1/32 reject\n")
	})
	url := func(mode, ca string) string {
		q := neturl.Values{"sslmode": {mode}}
		if mode != "disable" {
			q.Set("sslrootcert", filepath.Join(dir, ca))
			q.Set("sslcert", filepath.Join(dir, "client.crt"))
			q.Set("sslkey", filepath.Join(dir, "client.key"))
		}
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?%s", c.port, q.Encode())
	}
	return TLSServer{URL: url("verify-full", "ca.crt"), Plain: url("disable", ""), OtherCA: url("verify-full", "other-ca.crt")}
}

// newCA makes a CA and writes its certificate to certFile.
func newCA(certFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "warren test PostgreSQL CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}

// issue writes a certificate for name (a common name, and the IP address
// it is if it is one) that ca signs, and its key.
func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage, name, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}
