package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestProtobufListsAreUpstreamsAsObjectsChange: warren writes the items of
// protobuf lists from its cache of encodings; every answer is a well-formed
// one, as upstream's encoder makes of the objects it carries, byte for byte,
// and the objects are current after an update and a delete.
func TestProtobufListsAreUpstreamsAsObjectsChange(t *testing.T) {
	t.Parallel()
	s := startServer(t, "sqlite")
	ctx := context.Background()
	s.Workspace("encodings")
	c := s.client("encodings")
	for i := range 20 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"v": fmt.Sprint(i)}}
		if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cached := func() float64 { return s.metric(`warren_list_items_total{encoding="cached"}`) }

	configMaps := func(what string) *corev1.ConfigMapList {
		t.Helper()
		list := &corev1.ConfigMapList{}
		listed(t, c, list)
		if len(list.Items) == 0 {
			t.Fatalf("%s: no config maps listed", what)
		}
		return list
	}
	configMaps("the first list")
	before := cached()
	list := configMaps("the same list again")
	if after := cached(); after-before < float64(len(list.Items)) {
		t.Fatalf("the same %d config maps listed again: %v items from the cache", len(list.Items), after-before)
	}

	changed := list.Items[3].DeepCopy()
	changed.Data["v"] = "changed"
	if _, err := c.CoreV1().ConfigMaps("default").Update(ctx, changed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().ConfigMaps("default").Delete(ctx, "cm-5", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, item := range configMaps("the list after an update and a delete").Items {
		switch item.Name {
		case changed.Name:
			if item.Data["v"] != "changed" {
				t.Errorf("%s after its update: data %v", item.Name, item.Data)
			}
		case "cm-5":
			t.Errorf("cm-5 listed after its delete")
		}
	}
}

// listed gets the config maps of c's default namespace in protobuf, checks that
// the answer is what upstream's protobuf encoder writes for the list it
// decodes to (its form: whether its objects are current is the caller's to
// check), and decodes it into into.
func listed(t *testing.T, c kubernetes.Interface, into runtime.Object) {
	t.Helper()
	body, err := c.CoreV1().RESTClient().Get().Namespace("default").Resource("configmaps").SetHeader("Accept", runtime.ContentTypeProtobuf).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	codec := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	obj, gvk, err := codec.Decode(body, nil, into)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	obj.GetObjectKind().SetGroupVersionKind(*gvk)
	var upstream bytes.Buffer
	if err := codec.Encode(obj, &upstream); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, upstream.Bytes()) {
		t.Fatalf("list: warren's %d bytes differ from upstream's encoding of the same list, %d bytes", len(body), upstream.Len())
	}
}
