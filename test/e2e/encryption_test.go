package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warren-dev/warren/test/warrentest"
)

// encryptionConfig is an EncryptionConfiguration encrypting secrets with the
// providers given (YAML list items), reading unencrypted ones too.
func encryptionConfig(providers ...string) string {
	return `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
` + strings.Join(providers, "") + `  - identity: {}
`
}

// aesKey is an aescbc or aesgcm provider item with one key.
func aesKey(provider, name, secret string) string {
	return fmt.Sprintf("  - %s: {keys: [{name: %s, secret: %s}]}\n", provider, name, base64.StdEncoding.EncodeToString([]byte(secret)))
}

// TestEncryptionAtRest runs warren with upstream's EncryptionConfiguration:
// a secret's row holds no plaintext, only the provider's prefix and the name
// of the key that wrote it, while config maps (not configured) stay readable
// in SQL; keys rotate as with kube-apiserver — a new key added, the secret
// rewritten, the old key removed — and every provider reads what it wrote
// across restarts, on both databases.
func TestEncryptionAtRest(t *testing.T) {
	t.Parallel()
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			file := filepath.Join(t.TempDir(), "encryption.yaml")
			write := func(config string) {
				t.Helper()
				if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(encryptionConfig(aesKey("aescbc", "first", "0123456789abcdef0123456789abcdef")))
			s := startServerWith(t, append(warrentest.Storage(t, dialect), "--encryption-provider-config", file)...)
			secrets := s.client("root").CoreV1().Secrets("default")
			const marker = "plaintext-that-must-not-be-stored"
			if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": marker}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.client("root").CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Data: map[string]string{"note": marker}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			stored := func(resource string) []byte {
				t.Helper()
				return storageRow[[]byte](t, s, `SELECT value FROM objects WHERE key = $1`, "/core/"+resource+"/root/default/db")
			}
			expect := func(when, prefix string) {
				t.Helper()
				row := stored("secrets")
				if bytes.Contains(row, []byte(marker)) || bytes.Contains(row, []byte(base64.StdEncoding.EncodeToString([]byte(marker)))) {
					t.Errorf("%s: the secret's row holds its data in plaintext", when)
				}
				if !bytes.HasPrefix(row, []byte(prefix)) {
					t.Errorf("%s: the secret's row starts %q, want %q", when, row[:min(len(row), 40)], prefix)
				}
				got, err := secrets.Get(ctx, "db", metav1.GetOptions{})
				if err != nil || string(got.Data["password"]) != marker {
					t.Errorf("%s: reading the secret: %v %q", when, err, got.Data["password"])
				}
			}
			expect("written with the first key", "k8s:enc:aescbc:v1:first:")
			if !bytes.Contains(stored("configmaps"), []byte(marker)) {
				t.Errorf("a config map, which the configuration does not name, is not stored as written")
			}

			// Rotation: the new key reads and writes, the old one still reads.
			write(encryptionConfig(aesKey("aesgcm", "second", "fedcba9876543210fedcba9876543210"), aesKey("aescbc", "first", "0123456789abcdef0123456789abcdef")))
			s.Restart()
			expect("after a restart with a new key first", "k8s:enc:aescbc:v1:first:")
			got, err := secrets.Get(ctx, "db", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := secrets.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			expect("rewritten", "k8s:enc:aesgcm:v1:second:")
			write(encryptionConfig(aesKey("aesgcm", "second", "fedcba9876543210fedcba9876543210")))
			s.Restart()
			expect("after the old key is removed", "k8s:enc:aesgcm:v1:second:")

			// A configuration that is not valid stops warren with the reason.
			write("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: [{aescbc: {keys: [{name: short, secret: c2hvcnQ=}]}}]}]\n")
			s.Stop()
			if err := s.Process.Launch(); err == nil || !strings.Contains(err.Error(), "encryption-provider-config") {
				t.Errorf("warren started with a key of 5 bytes, or said nothing of it: %v", err)
			}
		})
	}
}
