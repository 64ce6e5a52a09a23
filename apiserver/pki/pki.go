// Package pki keeps an installation's certificate authorities, the admin's
// and the front proxy's client certificates and the service account key in a
// directory all its processes share, and each process's serving certificate in
// its data directory.
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
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// validity of every certificate made here.
const validity = 10 * 365 * 24 * time.Hour

// Files names the PEM files of an installation and of one of its processes.
// Every process of an installation (shards, proxies) shares the installation's
// files: the CA, which issues serving and client certificates, the admin's
// client certificate, the service account key, and the front proxy's CA and
// client certificate, with which proxies pass on who a request is from. Each
// process has its own serving certificate.
type Files struct {
	CACert, CAKey           string
	ServingCert, ServingKey string
	AdminCert, AdminKey     string
	// ServiceAccountKey signs service account tokens.
	ServiceAccountKey string
	// FrontProxyCACert signs the client certificates whose holders shards
	// believe the X-Remote-* headers of; FrontProxyCert is the proxies' own.
	FrontProxyCACert, FrontProxyCAKey string
	FrontProxyCert, FrontProxyKey     string
	// ShardCert is the client certificate shards and proxies reach each
	// other with: an admin, in ShardsGroup.
	ShardCert, ShardKey string
}

// ShardsGroup is the group of the shard certificate.
const ShardsGroup = tenancy.ShardsGroup

// FilesIn returns the files of a process whose own files are kept in dir and
// its installation's in shared (dir too if empty).
func FilesIn(dir, shared string) Files {
	if shared == "" {
		shared = dir
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	s := func(name string) string { return filepath.Join(shared, name) }
	return Files{
		CACert: s("ca.crt"), CAKey: s("ca.key"),
		ServingCert: p("serving.crt"), ServingKey: p("serving.key"),
		AdminCert: s("admin.crt"), AdminKey: s("admin.key"),
		ServiceAccountKey: s("serviceaccount.key"),
		FrontProxyCACert:  s("front-proxy-ca.crt"), FrontProxyCAKey: s("front-proxy-ca.key"),
		FrontProxyCert: s("front-proxy-client.crt"), FrontProxyKey: s("front-proxy-client.key"),
		ShardCert: s("shard.crt"), ShardKey: s("shard.key"),
	}
}

// FrontProxyUser is the name in the front proxy's client certificate.
const FrontProxyUser = "front-proxy"

// Ensure creates what of f is missing: the CAs, a serving certificate for
// hosts (DNS names or IP addresses), the client certificates of the user admin
// in group system:masters, of the shards and of the front proxy, and the
// service account signing key.
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
	ca, caKey, err := ensureCA(f.CACert, f.CAKey, "warren-ca")
	if err != nil {
		return err
	}
	proxyCA, proxyCAKey, err := ensureCA(f.FrontProxyCACert, f.FrontProxyCAKey, "warren-front-proxy-ca")
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
	if !exists(f.ShardCert) || !exists(f.ShardKey) {
		tmpl := template(pkix.Name{CommonName: "system:warren:shard", Organization: []string{"system:masters", ShardsGroup}}, x509.ExtKeyUsageClientAuth)
		if err := issue(tmpl, ca, caKey, f.ShardCert, f.ShardKey); err != nil {
			return fmt.Errorf("shard certificate: %w", err)
		}
	}
	if !exists(f.FrontProxyCert) || !exists(f.FrontProxyKey) {
		tmpl := template(pkix.Name{CommonName: FrontProxyUser}, x509.ExtKeyUsageClientAuth)
		if err := issue(tmpl, proxyCA, proxyCAKey, f.FrontProxyCert, f.FrontProxyKey); err != nil {
			return fmt.Errorf("front proxy certificate: %w", err)
		}
	}
	return nil
}

// ensureCA makes the CA certFile and keyFile hold, named name, unless they
// exist, and returns it.
func ensureCA(certFile, keyFile, name string) (*x509.Certificate, crypto.Signer, error) {
	if !exists(certFile) || !exists(keyFile) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: name}, key)
		if err != nil {
			return nil, nil, fmt.Errorf("making the CA %s: %w", name, err)
		}
		if err := write(certFile, keyFile, cert.Raw, key); err != nil {
			return nil, nil, err
		}
	}
	certs, err := certutil.CertsFromFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the CA %s: %w", certFile, err)
	}
	key, err := keyutil.PrivateKeyFromFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the CA key %s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("the CA key %s cannot sign", keyFile)
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

// ShardConfig returns a client configuration for the shard at host with the
// shards' credentials of f.
func ShardConfig(f Files, host string) *rest.Config {
	return &rest.Config{Host: host, TLSClientConfig: rest.TLSClientConfig{CertFile: f.ShardCert, KeyFile: f.ShardKey, CAFile: f.CACert}}
}

// WriteKubeconfig writes <dir>/admin.kubeconfig for the installation's admin
// (f's admin certificate, trusting f's CA) at the server at url, and returns
// its absolute path: context "root" addresses the root cluster, context
// "base" the server without a cluster path.
func WriteKubeconfig(f Files, dir, url string) (string, error) {
	ca, err := os.ReadFile(f.CACert)
	if err != nil {
		return "", err
	}
	cert, err := os.ReadFile(f.AdminCert)
	if err != nil {
		return "", err
	}
	key, err := os.ReadFile(f.AdminKey)
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["root"] = &clientcmdapi.Cluster{Server: url + "/clusters/" + string(logicalcluster.Root), CertificateAuthorityData: ca}
	cfg.Clusters["base"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["root"] = &clientcmdapi.Context{Cluster: "root", AuthInfo: "admin"}
	cfg.Contexts["base"] = &clientcmdapi.Context{Cluster: "base", AuthInfo: "admin"}
	cfg.CurrentContext = "root"
	path, err := filepath.Abs(filepath.Join(dir, "admin.kubeconfig"))
	if err != nil {
		return "", err
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}
