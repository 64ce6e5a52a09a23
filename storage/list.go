package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
)

// maxPage caps how far a filtered list grows its page size, as etcd3's store does.
const maxPage = 10000

// countBeyondPage bounds how many keys after a page a list counts for its
// remainingItemCount, so that paging through N keys costs O(N), not O(N²/limit)
// as counting the whole rest on every page would. Clients may not rely on the count
// (API conventions); when more keys remain, it is left out.
const countBeyondPage = 1000

const (
	listTooOld     = "The resourceVersion for the provided list is too old."
	continueTooOld = "The provided continue parameter is too old to display a consistent list result. " +
		"You can start a new list without the continue parameter, or use the continue token in this " +
		"response to retrieve the remainder of the results. Continuing with the provided token results " +
		"in an inconsistent list - objects that were created, modified, or deleted between the time " +
		"the first chunk was returned and now may show up in the list."
)

// GetList implements storage.Interface. It reads pages in key order from one
// revision: the current one, the one asked for, or the one of the continue token.
// When a selector drops objects, it doubles the page size until the limit fills.
func (s *Store) GetList(ctx context.Context, key string, opts storage.ListOptions, listObj runtime.Object) error {
	k, err := s.prepareKey(key, opts.Recursive)
	if err != nil {
		return err
	}
	listPtr, err := meta.GetItemsPtr(listObj)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(listPtr)
	if err != nil || v.Kind() != reflect.Slice {
		return fmt.Errorf("need ptr to slice: %v", err)
	}
	revision, continueKey, err := storage.ValidateListOptions(k, s.versioner, opts)
	if err != nil {
		return err
	}
	pred := opts.Predicate
	paging := pred.Limit > 0
	newItem := newItemFunc(listObj, v)

	itemType := reflect.PointerTo(v.Type().Elem())
	q := listQuery{r: keyRange{start: k, end: k + "\x01"}, revision: revision, limit: pred.Limit, keep: s.cachedValue(itemType)}
	if opts.Recursive {
		q.r = prefixRange(k)
		if paging && pred.Empty() {
			q.count = pred.Limit + countBeyondPage
		}
	}
	if continueKey != "" {
		q.r.start = fromKey(continueKey)
	}
	items := newListItems(s.groupResource)
	var lastKey string
	var more bool
	var count int64
	for {
		pg, err := s.b.db.list(ctx, q)
		if err != nil {
			return s.listError(ctx, err, q.revision, continueKey, k)
		}
		if q.revision == 0 {
			if err := s.validateMinimumResourceVersion(opts.ResourceVersion, pg.revision); err != nil {
				return err
			}
			q.revision = pg.revision
		}
		count = pg.count
		more = pg.more
		if n := len(pg.rows); pred.Empty() && n > 0 {
			if paging {
				n = min(n, int(pred.Limit)-v.Len())
			}
			v.Grow(max(n, 0)) // every row is an item: append without regrowing
		}
		full := false
		for i, r := range pg.rows {
			if paging && int64(v.Len()) >= pred.Limit {
				full, more = true, true
				break
			}
			lastKey = r.key
			if err := s.appendItem(ctx, r, pred, newItem, itemType, items, v); err != nil {
				return err
			}
			pg.rows[i] = row{} // let decoded rows go early on long lists
		}
		s.b.db.recycle(pg)
		if full || !pg.more || (paging && int64(v.Len()) >= pred.Limit) {
			break
		}
		q.r.start = lastKey + "\x01"
		if q.limit < maxPage {
			q.limit = min(2*q.limit, maxPage)
		}
	}
	if err := items.err(); err != nil {
		return err
	}
	token, remaining, err := storage.PrepareContinueToken(lastKey, k, q.revision, count, more, opts)
	if err != nil {
		return err
	}
	if q.count > 0 && count >= q.count {
		remaining = nil
	}
	if v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	if err := s.versioner.UpdateList(listObj, uint64(q.revision), token, remaining); err != nil {
		return err
	}
	if utilfeature.DefaultFeatureGate.Enabled(features.ShardedListAndWatch) {
		pred.SetShardInfoOnList(listObj)
	}
	return nil
}

// listError says what a failed page read means to the client.
func (s *Store) listError(ctx context.Context, err error, revision int64, continueKey, prefix string) error {
	var future *futureRevisionError
	switch {
	case errors.As(err, &future):
		return storage.NewTooLargeResourceVersionError(uint64(revision), uint64(future.current), 0)
	case errors.Is(err, errCompacted) && continueKey != "":
		// A continue token at revision -1 lists the rest at the newest revision.
		status := apierrors.NewResourceExpired(continueTooOld)
		if token, err := storage.EncodeContinue(continueKey, prefix, -1); err == nil {
			status.ErrStatus.ListMeta.Continue = token
		}
		return status
	case errors.Is(err, errCompacted):
		return apierrors.NewResourceExpired(listTooOld)
	case ctx.Err() != nil:
		return storage.NewTimeoutError(prefix, "request did not complete within requested timeout")
	default:
		return storage.NewInternalError(err)
	}
}

// cachedValue lets a page hold, of a row whose object the cache of decoded
// objects holds at the row's revision as an object of type t, the value the
// cache keeps rather than a copy of its own, and the cache's entry, which
// appendItem then need not look up again: a page of cached objects copies no
// value.
func (s *Store) cachedValue(t reflect.Type) func(key string, revision int64, value []byte) ([]byte, *decodedObject) {
	return func(key string, revision int64, value []byte) ([]byte, *decodedObject) {
		if d, ok := s.b.decoded.latest(s.id, key, t); ok && d.revision == revision && bytes.Equal(d.stored, value) {
			return d.stored, d
		}
		return bytes.Clone(value), nil
	}
}

// appendItem decodes one row (or takes it from the cache of decoded objects)
// and appends it to the list if the predicate matches. The item shares its
// maps, slices and pointers with the cache's object.
func (s *Store) appendItem(ctx context.Context, r row, pred storage.SelectionPredicate, newItem func() runtime.Object, itemType reflect.Type, items *listItems, v reflect.Value) error {
	data, _, err := s.transformer.TransformFromStorage(ctx, r.value, authenticatedData(r.key))
	if err != nil {
		return items.add(r.key, storage.NewInternalError(fmt.Errorf("unable to transform key %q: %w", r.key, err)))
	}
	if err := ctx.Err(); err != nil {
		return storage.NewTimeoutError(r.key, "request did not complete within requested timeout")
	}
	k := decodedKey{store: s.id, key: r.key, revision: r.revision, form: formInto}
	obj, cached := s.b.decoded.shared(r.decoded, k, data, itemType)
	if !cached {
		if obj, _, err = s.codec.Decode(data, nil, newItem()); err != nil {
			return items.add(r.key, undecodable(err))
		}
		if err := s.versioner.UpdateObject(obj, uint64(r.revision)); err != nil {
			return err
		}
		if err := s.markCluster(r.key, obj); err != nil {
			return err
		}
		s.b.decoded.keep(k, data, obj, r.value)
	}
	if matched, err := pred.Matches(obj); err == nil && matched {
		v.Set(reflect.Append(v, reflect.ValueOf(obj).Elem()))
	}
	return nil
}

// newItemFunc makes empty list items; unstructured items keep the list's version.
func newItemFunc(listObj runtime.Object, v reflect.Value) func() runtime.Object {
	if u, ok := listObj.(*unstructured.UnstructuredList); ok {
		if apiVersion := u.GetAPIVersion(); apiVersion != "" {
			return func() runtime.Object {
				return &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion}}
			}
		}
	}
	elem := v.Type().Elem()
	return func() runtime.Object { return reflect.New(elem).Interface().(runtime.Object) }
}
