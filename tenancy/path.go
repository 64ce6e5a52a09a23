package tenancy

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Path is the address of a workspace in the tree: "root", "root:acme",
// "root:acme:team-a". Every segment after root is a workspace's name in the
// workspace before it.
type Path string

// RootPath is the path of the root workspace.
const RootPath Path = "root"

// separator separates the segments of a path.
const separator = ":"

// IsPath reports whether s is shaped like a path rather than a logical cluster
// name: root, or anything with a separator. No logical cluster but root's is
// named "root", and no name holds a separator.
func IsPath(s string) bool {
	return s == string(RootPath) || strings.Contains(s, separator)
}

// ParsePath returns s as a path, or why it is none.
func ParsePath(s string) (Path, error) {
	segments := strings.Split(s, separator)
	if segments[0] != string(RootPath) {
		return "", fmt.Errorf("invalid workspace path %q: it must start with %q", s, RootPath)
	}
	for _, seg := range segments[1:] {
		if err := ValidateName(seg); err != nil {
			return "", fmt.Errorf("invalid workspace path %q: %w", s, err)
		}
	}
	return Path(s), nil
}

// ValidateAddress says why s is neither a path nor a logical cluster name, or
// nil if it is one: what may follow /clusters/, or name a type's workspace.
func ValidateAddress(s string) error {
	if IsPath(s) {
		_, err := ParsePath(s)
		return err
	}
	return logicalcluster.Validate(s)
}

// ValidateName says why name cannot name a workspace, or nil if it can.
func ValidateName(name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("invalid workspace name %q: %s", name, errs[0])
	}
	return nil
}

// Segments returns the workspace names along p after root.
func (p Path) Segments() []string {
	return strings.Split(string(p), separator)[1:]
}

// Join returns the path of the child name of p.
func (p Path) Join(name string) Path { return p + separator + Path(name) }

// Parent returns the path of p's parent; root has none.
func (p Path) Parent() (Path, bool) {
	i := strings.LastIndex(string(p), separator)
	if i < 0 {
		return "", false
	}
	return p[:i], true
}

// Base returns the last segment of p: a workspace's name, or root.
func (p Path) Base() string {
	return string(p[strings.LastIndex(string(p), separator)+1:])
}

// clusterNameLength is the length of a new logical cluster name: 13 base-32
// digits, 65 bits, so that a million clusters collide with a chance of about one
// in 70 million (and creating one refuses a collision anyway).
const clusterNameLength = 13

// NewClusterName returns a random, opaque logical cluster name.
func NewClusterName() logicalcluster.Name {
	return logicalcluster.Name(strings.ToLower(rand.Text()[:clusterNameLength]))
}

// in returns ctx for reading and writing cluster-scoped objects of cluster
// through the registry, as a request to that cluster would.
func in(ctx context.Context, cluster logicalcluster.Name) context.Context {
	return genericapirequest.WithNamespace(logicalcluster.WithName(ctx, cluster), "")
}
