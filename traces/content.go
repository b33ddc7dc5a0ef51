package traces

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// A trace keeps bodies as they crossed the wire: a gzip answer stays gzip,
// so that replay and the trace's sizes are true to what was sent. Whatever
// reads a body's content (redaction, correlation, checks, traces cat) reads
// it decoded, through these functions.

// MaxDecoded bounds a decoded body: a small compressed body that would
// decode past it (a decompression bomb) is not decoded.
const MaxDecoded = 64 << 20

// ErrEncoding reports a body that could not be decoded by its
// Content-Encoding.
var ErrEncoding = errors.New("body does not decode by its Content-Encoding")

// ContentEncoding returns the codings of a Content-Encoding header in h,
// lower case, in the order they were applied; nil for none or identity.
func ContentEncoding(h []Header) []string {
	var out []string
	for _, f := range h {
		if !strings.EqualFold(f.Name, "Content-Encoding") {
			continue
		}
		for c := range strings.SplitSeq(f.Value, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				out = append(out, c)
			}
		}
	}
	return out
}

// Decode returns data decoded by codings, applied in that order (so undone
// in reverse): gzip (x-gzip), deflate (zlib, or raw deflate as some servers
// send), br and zstd. Data with no codings is returned as it is. A coding
// it does not know, data that do not decode, or a result past MaxDecoded is
// an error wrapping ErrEncoding.
func Decode(data []byte, codings []string) ([]byte, error) {
	for i := len(codings) - 1; i >= 0; i-- {
		out, err := decodeOne(data, codings[i])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrEncoding, codings[i], err)
		}
		data = out
	}
	return data, nil
}

// DecodePrefix decodes what data, the first bytes of a body encoded by
// codings (an answer cut where its reader stopped keeping it), holds: the
// first bytes of the content, at most limit, as far as they decode. It
// returns nil when not even the start decodes.
func DecodePrefix(data []byte, codings []string, limit int) []byte {
	var r io.Reader = bytes.NewReader(data)
	for i := len(codings) - 1; i >= 0; i-- {
		d, closer, err := codingReader(r, codings[i])
		if err != nil {
			return nil
		}
		defer closer()
		r = d
	}
	out, _ := io.ReadAll(io.LimitReader(r, int64(limit))) // what came before the cut
	if len(out) == 0 {
		return nil
	}
	return out
}

// codingReader returns a reader of what r holds encoded by coding, and what
// releases it.
func codingReader(r io.Reader, coding string) (io.Reader, func(), error) {
	switch coding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { _ = zr.Close() }, nil
	case "deflate":
		br := bufio.NewReader(r)
		if head, err := br.Peek(2); err == nil && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 && head[0]&0x0f == 8 {
			zr, err := zlib.NewReader(br)
			if err == nil {
				return zr, func() { _ = zr.Close() }, nil
			}
		}
		// Some servers send raw deflate under this name.
		fr := flate.NewReader(br)
		return fr, func() { _ = fr.Close() }, nil
	case "br":
		return brotli.NewReader(r), func() {}, nil
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxDecoded))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, errors.New("unknown coding")
}

func decodeOne(data []byte, coding string) ([]byte, error) {
	r, closer, err := codingReader(bytes.NewReader(data), coding)
	if err != nil {
		return nil, err
	}
	defer closer()
	out, err := io.ReadAll(io.LimitReader(r, MaxDecoded+1))
	if err != nil {
		return nil, err
	}
	if len(out) > MaxDecoded {
		return nil, fmt.Errorf("decodes past %d bytes", MaxDecoded)
	}
	return out, nil
}

// Encode returns data encoded by codings, applied in that order: the
// reverse of Decode, for a body changed after decoding (a redacted one)
// that must stay true to its headers.
func Encode(data []byte, codings []string) ([]byte, error) {
	for _, c := range codings {
		var b bytes.Buffer
		var w io.WriteCloser
		switch c {
		case "gzip", "x-gzip":
			w = gzip.NewWriter(&b)
		case "deflate":
			w = zlib.NewWriter(&b)
		case "br":
			w = brotli.NewWriter(&b)
		case "zstd":
			zw, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
			if err != nil {
				return nil, err
			}
			w = zw
		default:
			return nil, fmt.Errorf("%w: %s: unknown coding", ErrEncoding, c)
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		data = b.Bytes()
	}
	return data, nil
}

// Content returns a body's content as the application meant it: decoded by
// the Content-Encoding in h. A body recorded whole with no encoding is
// returned as it is (sharing its memory). For a truncated body, or one that
// does not decode, it returns the recorded bytes and false.
func Content(h []Header, b *Body) ([]byte, bool) {
	codings := ContentEncoding(h)
	if len(codings) == 0 {
		return b.Data, !b.Truncated()
	}
	if b.Truncated() {
		return b.Data, false
	}
	out, err := Decode(b.Data, codings)
	if err != nil {
		return b.Data, false
	}
	return out, true
}

// RequestContent is Content for an exchange's request body.
func (ex *Exchange) RequestContent() ([]byte, bool) { return Content(ex.ReqHeader, &ex.ReqBody) }

// ResponseContent is Content for an exchange's response body.
func (ex *Exchange) ResponseContent() ([]byte, bool) { return Content(ex.RespHeader, &ex.RespBody) }
