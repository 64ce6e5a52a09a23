// Package pki keeps an installation's certificate authority, the apiserver's
// serving certificate and the admin's client certificate in its data directory.
//
// Files are created once and reused: a second start on the same directory serves
// with the same CA, so kubeconfigs written earlier stay valid. A serving
// certificate that does not cover the hosts asked for is replaced (signed by the
// same CA).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// validity of every certificate made here.
const validity = 10 * 365 * 24 * time.Hour

// Files names the PEM files of an installation.
type Files struct {
	CACert, CAKey           string
	ServingCert, ServingKey string
	AdminCert, AdminKey     string
	// ServiceAccountKey signs service account tokens.
	ServiceAccountKey string
}

// FilesIn returns the files kept in dir.
func FilesIn(dir string) Files {
	p := func(name string) string { return filepath.Join(dir, name) }
	return Files{
		CACert: p("ca.crt"), CAKey: p("ca.key"),
		ServingCert: p("serving.crt"), ServingKey: p("serving.key"),
		AdminCert: p("admin.crt"), AdminKey: p("admin.key"),
		ServiceAccountKey: p("serviceaccount.key"),
	}
}

// Ensure creates what of f is missing: the CA, a serving certificate for hosts
// (DNS names or IP addresses), a client certificate for the user admin in
// group system:masters, and the service account signing key.
func Ensure(f Files, hosts []string) error {
	if !exists(f.ServiceAccountKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
		if err != nil {
			return err
		}
		if err := keyutil.WriteKey(f.ServiceAccountKey, keyPEM); err != nil {
			return fmt.Errorf("service account key: %w", err)
		}
	}
	ca, caKey, err := ensureCA(f)
	if err != nil {
		return err
	}
	if !covers(f.ServingCert, hosts) {
		tmpl := template(pkix.Name{CommonName: "warren"}, x509.ExtKeyUsageServerAuth)
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		if err := issue(tmpl, ca, caKey, f.ServingCert, f.ServingKey); err != nil {
			return fmt.Errorf("serving certificate: %w", err)
		}
	}
	if !exists(f.AdminCert) || !exists(f.AdminKey) {
		tmpl := template(pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth)
		if err := issue(tmpl, ca, caKey, f.AdminCert, f.AdminKey); err != nil {
			return fmt.Errorf("admin certificate: %w", err)
		}
	}
	return nil
}

func ensureCA(f Files) (*x509.Certificate, crypto.Signer, error) {
	if !exists(f.CACert) || !exists(f.CAKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "warren-ca"}, key)
		if err != nil {
			return nil, nil, fmt.Errorf("making the CA: %w", err)
		}
		if err := write(f.CACert, f.CAKey, cert.Raw, key); err != nil {
			return nil, nil, err
		}
	}
	certs, err := certutil.CertsFromFile(f.CACert)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the CA: %w", err)
	}
	key, err := keyutil.PrivateKeyFromFile(f.CAKey)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the CA key cannot sign")
	}
	return certs[0], signer, nil
}

// ServiceAccountKey reads the key that signs service account tokens.
func ServiceAccountKey(f Files) (*ecdsa.PrivateKey, error) {
	key, err := keyutil.PrivateKeyFromFile(f.ServiceAccountKey)
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("service account key %s is not an ECDSA key", f.ServiceAccountKey)
	}
	return ec, nil
}

func template(subject pkix.Name, usage x509.ExtKeyUsage) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

func issue(tmpl, ca *x509.Certificate, caKey crypto.Signer, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	return write(certFile, keyFile, der, key)
}

func write(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	if err := keyutil.WriteKey(keyFile, keyPEM); err != nil {
		return err
	}
	certPEM, err := certutil.EncodeCertificates(&x509.Certificate{Raw: der})
	if err != nil {
		return err
	}
	return certutil.WriteCert(certFile, certPEM)
}

// covers reports whether the certificate in file is valid now and names every host.
func covers(file string, hosts []string) bool {
	certs, err := certutil.CertsFromFile(file)
	if err != nil || len(certs) == 0 {
		return false
	}
	c := certs[0]
	if time.Now().After(c.NotAfter.Add(-24 * time.Hour)) {
		return false
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

func exists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}
