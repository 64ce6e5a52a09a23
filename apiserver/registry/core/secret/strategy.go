// Package secret serves core/v1 Secrets.
package secret

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/registry/core/configmap"
)

// requiredKeys are the data keys a Secret of a type must hold.
var requiredKeys = map[corev1.SecretType][]string{
	corev1.SecretTypeDockercfg:        {corev1.DockerConfigKey},
	corev1.SecretTypeDockerConfigJson: {corev1.DockerConfigJsonKey},
	corev1.SecretTypeSSHAuth:          {corev1.SSHAuthPrivateKey},
	corev1.SecretTypeTLS:              {corev1.TLSCertKey, corev1.TLSPrivateKeyKey},
}

func strategy() *registry.Strategy {
	s := registry.NewStrategy(true)
	s.Prepare = func(obj, _ runtime.Object) {
		// stringData is write-only: Kubernetes folds it into data on every write.
		secret := obj.(*corev1.Secret)
		if len(secret.StringData) > 0 && secret.Data == nil {
			secret.Data = make(map[string][]byte, len(secret.StringData))
		}
		for k, v := range secret.StringData {
			secret.Data[k] = []byte(v)
		}
		secret.StringData = nil
	}
	s.Check = check
	s.CheckChange = func(obj, old runtime.Object) field.ErrorList {
		secret, oldSecret := obj.(*corev1.Secret), old.(*corev1.Secret)
		errs := apivalidation.ValidateImmutableField(secret.Type, oldSecret.Type, field.NewPath("type"))
		return append(errs, configmap.ValidateImmutable(secret.Immutable, oldSecret.Immutable, reflect.DeepEqual(secret.Data, oldSecret.Data))...)
	}
	s.Fields = func(obj runtime.Object) fields.Set {
		return fields.Set{"type": string(obj.(*corev1.Secret).Type)}
	}
	return s
}

func check(obj runtime.Object) field.ErrorList {
	secret := obj.(*corev1.Secret)
	data := field.NewPath("data")
	errs := configmap.ValidateData(nil, secret.Data, data, data)
	for _, key := range requiredKeys[secret.Type] {
		if _, ok := secret.Data[key]; !ok {
			errs = append(errs, field.Required(data.Key(key), ""))
		}
	}
	switch secret.Type {
	case corev1.SecretTypeServiceAccountToken:
		if secret.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeBasicAuth:
		_, user := secret.Data[corev1.BasicAuthUsernameKey]
		_, password := secret.Data[corev1.BasicAuthPasswordKey]
		if !user && !password {
			errs = append(errs, field.Required(data.Key(corev1.BasicAuthUsernameKey), "or "+data.Key(corev1.BasicAuthPasswordKey).String()))
		}
	case "":
		errs = append(errs, field.Required(field.NewPath("type"), ""))
	}
	return errs
}
