package storage

import (
	"fmt"
	"net/http"

	grpccodes "google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tooLargeError refuses an object larger than the store takes. It speaks two
// vocabularies: the apiserver's handlers recognise etcd's "request is too large"
// by its code and text (and retry once without managed fields), and its Status
// answers the client 413 with the sizes.
type tooLargeError struct {
	size, limit int
}

// Error is etcd's text for the error, which the apiserver matches verbatim.
func (e *tooLargeError) Error() string { return "etcdserver: request is too large" }

// Code is etcd's gRPC code for the error.
func (e *tooLargeError) Code() grpccodes.Code { return grpccodes.InvalidArgument }

// Status implements apierrors.APIStatus.
func (e *tooLargeError) Status() metav1.Status {
	return metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusRequestEntityTooLarge,
		Reason:  metav1.StatusReasonRequestEntityTooLarge,
		Message: fmt.Sprintf("the stored object would be %d bytes, more than the limit of %d bytes", e.size, e.limit),
	}
}

// erasedError refuses to create an object in a logical cluster whose objects
// were erased: the cluster is gone, and the client hears 404, as it would had
// it asked a moment later.
type erasedError struct {
	cluster string
}

func (e *erasedError) Error() string {
	return fmt.Sprintf("logical cluster %s was deleted", e.cluster)
}

// Status implements apierrors.APIStatus.
func (e *erasedError) Status() metav1.Status {
	return metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotFound,
		Reason:  metav1.StatusReasonNotFound,
		Message: e.Error(),
	}
}
