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
// "root:acme:team-a". Every segment after the first is a workspace's name in
// the workspace before it. A user's home workspace, which has no parent, is
// "user:<name>" (kcp's alias), and its children are below it as below root.
// As in kcp, a path may also start at any logical cluster by its name
// ("2x7kq9v4m1c8:team-a"); a workspace's canonical path, the one its
// LogicalCluster records, starts at root or at a home.
type Path string

// RootPath is the path of the root workspace.
const RootPath Path = "root"

// separator separates the segments of a path.
const separator = ":"

// homePrefix starts the path of a home workspace, before the user's name.
const homePrefix = "user" + separator

// HomePath returns the path of the home workspace of the user username.
func HomePath(username string) Path { return Path(homePrefix + username) }

// IsPath reports whether s is shaped like a path rather than a logical cluster
// name: root, or anything with a separator. No logical cluster but root's is
// named "root", and no name holds a separator.
func IsPath(s string) bool {
	return s == string(RootPath) || strings.Contains(s, separator)
}

// ParsePath returns s as a path, or why it is none.
func ParsePath(s string) (Path, error) {
	p := Path(s)
	start, user, segments := p.split()
	switch {
	case strings.HasPrefix(s, homePrefix) && !validUsername(user):
		return "", fmt.Errorf("invalid workspace path %q: %q cannot name a user's home", s, user)
	case !strings.HasPrefix(s, homePrefix) && logicalcluster.Validate(string(start)) != nil:
		return "", fmt.Errorf("invalid workspace path %q: it must start with %q, %q or a logical cluster's name", s, RootPath, homePrefix)
	}
	for _, seg := range segments {
		if err := ValidateName(seg); err != nil {
			return "", fmt.Errorf("invalid workspace path %q: %w", s, err)
		}
	}
	return p, nil
}

// validUsername reports whether a home path can name the user: any name
// without a separator, a slash or a control character.
func validUsername(name string) bool {
	return name != "" && !strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r < ' ' || r == 0x7f })
}

// split returns the logical cluster p starts at, the user whose home that is
// ("" if it is none), and the workspace names along p after it.
func (p Path) split() (start logicalcluster.Name, user string, segments []string) {
	parts := strings.Split(string(p), separator)
	if parts[0] == strings.TrimSuffix(homePrefix, separator) && len(parts) > 1 {
		return HomeName(parts[1]), parts[1], parts[2:]
	}
	return logicalcluster.Name(parts[0]), "", parts[1:]
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

// Segments returns the workspace names along p after the cluster it starts at.
func (p Path) Segments() []string {
	_, _, segments := p.split()
	return segments
}

// Join returns the path of the child name of p.
func (p Path) Join(name string) Path { return p + separator + Path(name) }

// Parent returns the path of p's parent; a path of one cluster (root, a home,
// a logical cluster by name) has none.
func (p Path) Parent() (Path, bool) {
	if len(p.Segments()) == 0 {
		return "", false
	}
	return p[:strings.LastIndex(string(p), separator)], true
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
