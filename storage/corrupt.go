package storage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
)

// With the AllowUnsafeMalformedObjectDeletion feature, an object that cannot be
// transformed or decoded is "corrupt": reads report it so that the registry can
// offer its unsafe deletion, and lists go on past it, as etcd3's store does.

// corruptObjectError marks a stored value that failed to transform or decode.
type corruptObjectError struct {
	err  error
	what string
}

func (e *corruptObjectError) Error() string { return fmt.Sprintf("%s: %v", e.what, e.err) }
func (e *corruptObjectError) Unwrap() error { return e.err }

func unsafeDeletion() bool {
	return utilfeature.DefaultFeatureGate.Enabled(features.AllowUnsafeMalformedObjectDeletion)
}

// corruptTransformer marks every failure to read a stored value as corrupt.
type corruptTransformer struct {
	value.Transformer
}

func (t corruptTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	out, stale, err := t.Transformer.TransformFromStorage(ctx, data, dataCtx)
	if err != nil {
		err = &corruptObjectError{err: err, what: "data from the storage is not transformable"}
	}
	return out, stale, err
}

// corrupt turns the error of reading a corrupt object into the storage error the
// registry looks for.
func corrupt(key string, err error) error {
	var c *corruptObjectError
	if errors.As(err, &c) {
		return storage.NewCorruptObjError(key, c)
	}
	return err
}

// undecodable marks a decode error as corrupt when unsafe deletion is allowed.
func undecodable(err error) error {
	if err == nil || !unsafeDeletion() {
		return err
	}
	return &corruptObjectError{err: err, what: "object not decodable"}
}

// maxCorrupt is how many corrupt objects a list reports before it stops.
const maxCorrupt = 100

var errTooManyCorrupt = errors.New("too many errors, the list is truncated")

// listItems collects the objects of a list that could not be read. Without unsafe
// deletion the first one fails the list; with it, corrupt objects are collected
// (up to maxCorrupt) and any other error stops the list.
type listItems struct {
	gr        schema.GroupResource
	aggregate bool
	corrupt   []error
	abort     error
}

func newListItems(gr schema.GroupResource) *listItems {
	return &listItems{gr: gr, aggregate: unsafeDeletion()}
}

// add records a broken item and returns an error if the list must stop.
func (l *listItems) add(key string, err error) error {
	var c *corruptObjectError
	switch {
	case !l.aggregate:
		return err
	case !errors.As(err, &c):
		l.abort = err
	default:
		l.corrupt = append(l.corrupt, storage.NewCorruptObjError(key, c))
		if len(l.corrupt) < maxCorrupt {
			return nil
		}
		l.abort = errTooManyCorrupt
	}
	return l.err()
}

// err is the list's error: nil, the error that stopped it, or a Status naming
// every corrupt object as a cause.
func (l *listItems) err() error {
	if len(l.corrupt) == 0 {
		return l.abort
	}
	causes := make([]metav1.StatusCause, 0, len(l.corrupt)+1)
	var text strings.Builder
	for _, err := range l.corrupt {
		var se *storage.StorageError
		if errors.As(err, &se) {
			causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeUnexpectedServerResponse, Field: se.Key, Message: err.Error()})
		}
	}
	switch {
	case errors.Is(l.abort, errTooManyCorrupt):
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeTooMany, Message: errTooManyCorrupt.Error()})
	case l.abort != nil:
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeUnexpectedServerResponse, Message: l.abort.Error()})
	}
	fmt.Fprintf(&text, "failed to read one or more %s from the storage: %v", l.gr.String(), l.corrupt[0])
	if len(l.corrupt) > 1 {
		fmt.Fprintf(&text, " (and %d more)", len(l.corrupt)-1)
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusInternalServerError,
		Reason:  metav1.StatusReasonStoreReadError,
		Details: &metav1.StatusDetails{Group: l.gr.Group, Kind: l.gr.Resource, Name: "list", Causes: causes},
		Message: text.String(),
	}}
}
