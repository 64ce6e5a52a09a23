package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	// rootPath is the path of the workspace at the top of the tree.
	rootPath = "root"
	// separator separates the names in a workspace path.
	separator = ":"
	// clustersPrefix precedes a workspace path in a server URL.
	clustersPrefix = "/clusters/"
)

// location is a workspace on a server.
type location struct {
	// base is the server's URL without /clusters/...: scheme://host:port and any
	// path before /clusters/, without a trailing slash.
	base string
	// path is the workspace's path, e.g. root:acme:team-a.
	path string
}

// serverURL is the URL by which clients reach the workspace.
func (l location) serverURL() string {
	return l.base + clustersPrefix + l.path
}

// parseServerURL reads which workspace a kubeconfig's server URL addresses: the
// path after /clusters/, or root if there is none.
func parseServerURL(server string) (location, error) {
	u, err := url.Parse(server)
	if err != nil {
		return location{}, fmt.Errorf("parsing server URL %q: %w", server, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return location{}, fmt.Errorf("server URL %q lacks a scheme or host", server)
	}
	prefix, path := u.Path, rootPath
	if i := strings.LastIndex(u.Path, clustersPrefix); i >= 0 {
		prefix, path = u.Path[:i], strings.TrimSuffix(u.Path[i+len(clustersPrefix):], "/")
	}
	if err := validatePath(path); err != nil {
		return location{}, fmt.Errorf("server URL %q: %w", server, err)
	}
	return location{base: u.Scheme + "://" + u.Host + strings.TrimSuffix(prefix, "/"), path: path}, nil
}

// resolvePath turns the argument of "kubectl ws <arg>" into the absolute path
// of the workspace to enter, given the current path: ".." is the parent, an
// argument starting with ":" or being or starting with "root:" is absolute,
// anything else is relative to the current path.
func resolvePath(current, arg string) (string, error) {
	var path string
	switch {
	case arg == "..":
		parent, _, ok := splitParent(current)
		if !ok {
			return "", errors.New("root has no parent workspace")
		}
		return parent, nil
	case strings.HasPrefix(arg, separator):
		path = strings.TrimPrefix(arg, separator)
	case arg == rootPath || strings.HasPrefix(arg, rootPath+separator):
		path = arg
	default:
		path = current + separator + arg
	}
	if err := validatePath(path); err != nil {
		return "", err
	}
	return path, nil
}

// validatePath says why path is no workspace path, or nil if it is one: names
// separated by colons, each a DNS-1123 label, the first being root.
func validatePath(path string) error {
	for _, name := range strings.Split(path, separator) {
		if name == "" {
			return fmt.Errorf("invalid workspace path %q: empty name between colons", path)
		}
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			return fmt.Errorf("invalid workspace path %q: %q is not a valid name: %s", path, name, strings.Join(errs, "; "))
		}
	}
	if first, _, _ := strings.Cut(path, separator); first != rootPath {
		return fmt.Errorf("invalid workspace path %q: an absolute path starts with %q", path, rootPath)
	}
	return nil
}

// splitParent cuts path into its parent's path and its own name; ok is false
// for root, which has no parent.
func splitParent(path string) (parent, name string, ok bool) {
	i := strings.LastIndex(path, separator)
	if i < 0 {
		return "", "", false
	}
	return path[:i], path[i+1:], true
}
