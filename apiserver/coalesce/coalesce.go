// Package coalesce gathers what an API answer's encoder writes into one write
// of the whole answer, or into writes longer than Threshold, through buffers
// kept for reuse.
//
// Upstream's list encoders (protobuf and JSON) stream a list item by item,
// starting with a write of a few bytes. For a client that accepts gzip —
// client-go and kubectl do — k8s.io/apiserver's response writer buffers such a
// stream until it knows whether the answer grows past the 128 KiB above which it
// compresses, in a buffer that starts at 80 bytes and grows by appending: the
// buffering of a 30 KB list of 200 ConfigMaps allocated five times that, for
// the collector to take back, on every list. Encoders wrapped here write into a
// buffer of Threshold bytes first, so the response writer's first write is
// either the whole answer, as short as upstream would have left uncompressed,
// or longer than 128 KiB, which it compresses as it would have: the same
// answers on the wire, without the garbage. A failed encoding writes nothing
// it had buffered, so upstream writes its error Status on a clean answer.
package coalesce

import (
	"bufio"
	"io"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
)

// Threshold is one byte more than the size up to which k8s.io/apiserver
// sends an answer uncompressed (its defaultGzipThresholdBytes).
const Threshold = 128<<10 + 1

// buffers keeps the buffers of encodings that ended; one is used per encoding
// under way.
var buffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, Threshold) }}

// Serializer makes the encoders of a NegotiatedSerializer coalesce their
// writes; everything else it leaves to s.
func Serializer(s runtime.NegotiatedSerializer) runtime.NegotiatedSerializer {
	return serializer{s}
}

type serializer struct{ runtime.NegotiatedSerializer }

func (s serializer) EncoderForVersion(e runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	return Encoder(s.NegotiatedSerializer.EncoderForVersion(e, gv))
}

// Encoder makes e's writes coalesce. Its encodings are e's, byte for byte, and
// carry e's identifier.
func Encoder(e runtime.Encoder) runtime.Encoder {
	return encoder{e}
}

type encoder struct{ runtime.Encoder }

var _ runtime.EncoderWithAllocator = encoder{}

func (e encoder) Encode(obj runtime.Object, w io.Writer) error {
	return coalesced(w, func(b io.Writer) error { return e.Encoder.Encode(obj, b) })
}

// EncodeWithAllocator hands the allocator on to e if e takes one.
func (e encoder) EncodeWithAllocator(obj runtime.Object, w io.Writer, a runtime.MemoryAllocator) error {
	inner, ok := e.Encoder.(runtime.EncoderWithAllocator)
	if !ok {
		return e.Encode(obj, w)
	}
	return coalesced(w, func(b io.Writer) error { return inner.EncodeWithAllocator(obj, b, a) })
}

// coalesced runs encode on a buffer in front of w and writes out what remains
// buffered once it succeeded; if it failed, what it left buffered is dropped.
func coalesced(w io.Writer, encode func(io.Writer) error) error {
	b := buffers.Get().(*bufio.Writer)
	b.Reset(w)
	defer func() {
		b.Reset(nil) // hold no writer between encodings
		buffers.Put(b)
	}()
	if err := encode(b); err != nil {
		return err
	}
	return b.Flush()
}
