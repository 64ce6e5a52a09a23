package apiserver

import (
	"runtime/debug"
	"strings"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/component-base/compatibility"
	"k8s.io/component-base/version"
)

// effectiveVersion is the Kubernetes version warren serves as: that of the
// k8s.io/apiserver it is built on, so clients parse /version as a Kubernetes
// release (kubectl refuses "v0.0.0-master", the default of unstamped builds).
type effectiveVersion struct {
	compatibility.MutableEffectiveVersion
	gitVersion string
}

func newEffectiveVersion() *effectiveVersion {
	library := "v0.37.0"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "k8s.io/apiserver" {
				library = dep.Version
			}
		}
	}
	// k8s.io libraries v0.X.Y are Kubernetes v1.X.Y.
	kube := "v1" + strings.TrimPrefix(library, "v0")
	binary := strings.TrimPrefix(kube, "v")
	if i := strings.IndexAny(binary, "-+"); i >= 0 {
		binary = binary[:i]
	}
	v := &effectiveVersion{MutableEffectiveVersion: compatibility.NewEffectiveVersionFromString(binary, "", ""), gitVersion: kube + "+warren"}
	if stamped := version.Get().GitVersion; !strings.HasPrefix(stamped, "v0.0.0-master") {
		v.gitVersion = stamped
	}
	return v
}

// Info implements compatibility.EffectiveVersion.
func (v *effectiveVersion) Info() *apimachineryversion.Info {
	info := v.MutableEffectiveVersion.Info()
	info.GitVersion = v.gitVersion
	return info
}
