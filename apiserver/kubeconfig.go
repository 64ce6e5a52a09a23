package apiserver

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/warren-dev/warren/apiserver/pki"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// writeKubeconfig writes <data-dir>/admin.kubeconfig for the installation's
// admin: context "root" addresses the root cluster, context "base" the server
// without a cluster path.
func writeKubeconfig(o *Options, files pki.Files) (string, error) {
	ca, err := os.ReadFile(files.CACert)
	if err != nil {
		return "", err
	}
	cert, err := os.ReadFile(files.AdminCert)
	if err != nil {
		return "", err
	}
	key, err := os.ReadFile(files.AdminKey)
	if err != nil {
		return "", err
	}
	base := "https://" + listenHost(o)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["root"] = &clientcmdapi.Cluster{Server: base + "/clusters/" + string(logicalcluster.Root), CertificateAuthorityData: ca}
	cfg.Clusters["base"] = &clientcmdapi.Cluster{Server: base, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["root"] = &clientcmdapi.Context{Cluster: "root", AuthInfo: "admin"}
	cfg.Contexts["base"] = &clientcmdapi.Context{Cluster: "base", AuthInfo: "admin"}
	cfg.CurrentContext = "root"
	path, err := filepath.Abs(filepath.Join(o.DataDir, "admin.kubeconfig"))
	if err != nil {
		return "", err
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}
