package traces

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecodeEveryCoding(t *testing.T) {
	want := []byte(`{"token":"` + strings.Repeat("secret", 50) + `"}`)
	for _, codings := range [][]string{nil, {"gzip"}, {"x-gzip"}, {"deflate"}, {"br"}, {"zstd"}, {"gzip", "br"}} {
		t.Run(strings.Join(codings, ","), func(t *testing.T) {
			enc, err := Encode(want, codings)
			if err != nil {
				t.Fatal(err)
			}
			if len(codings) > 0 && bytes.Equal(enc, want) {
				t.Fatal("encoding changed nothing")
			}
			hs := []Header{{Name: "content-encoding", Value: strings.Join(codings, ", ")}}
			got, ok := Content(hs, &Body{Data: enc})
			if !ok || !bytes.Equal(got, want) {
				t.Fatalf("decoded %q %v", got, ok)
			}
		})
	}
}

func TestDecodeRefusesWhatItCannot(t *testing.T) {
	gz, _ := Encode(bytes.Repeat([]byte("a"), 1000), []string{"gzip"})
	bomb, _ := Encode(make([]byte, MaxDecoded+1), []string{"gzip"})
	for _, tc := range []struct {
		name    string
		data    []byte
		codings []string
	}{
		{"not gzip", []byte("plain"), []string{"gzip"}},
		{"cut gzip", gz[:len(gz)/2], []string{"gzip"}},
		{"unknown coding", []byte("x"), []string{"compress"}},
		{"bomb", bomb, []string{"gzip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.data, tc.codings); !errors.Is(err, ErrEncoding) {
				t.Fatalf("err %v, want ErrEncoding", err)
			}
			got, ok := Content([]Header{{Name: "Content-Encoding", Value: strings.Join(tc.codings, ",")}}, &Body{Data: tc.data})
			if ok || !bytes.Equal(got, tc.data) {
				t.Fatal("a body that does not decode must come back as recorded, and say so")
			}
		})
	}
	// A truncated body is not decoded.
	if _, ok := Content([]Header{{Name: "Content-Encoding", Value: "gzip"}}, &Body{Data: gz[:10], Size: int64(len(gz))}); ok {
		t.Fatal("decoded a truncated body")
	}
}

func FuzzContentDecode(f *testing.F) {
	for _, c := range []string{"gzip", "deflate", "br", "zstd"} {
		enc, _ := Encode([]byte(`{"a":"hello"}`), []string{c})
		f.Add(enc, c)
	}
	f.Fuzz(func(t *testing.T, data []byte, coding string) {
		out, err := Decode(data, []string{coding})
		if err == nil && len(out) > MaxDecoded {
			t.Fatalf("decoded %d bytes", len(out))
		}
		if err != nil && !errors.Is(err, ErrEncoding) {
			t.Fatalf("error %v does not wrap ErrEncoding", err)
		}
	})
}

// TestJSONShowsDecodedBodies: traces cat's form names a body's encoding and
// gives it decoded, and reads back the bytes as they were sent.
func TestJSONShowsDecodedBodies(t *testing.T) {
	gz, _ := Encode([]byte(`{"next_cursor":"abc"}`), []string{"gzip"})
	s := &Session{ID: "g", Exchanges: []Exchange{{Method: "GET", URL: "/feed", Status: 200,
		RespHeader: []Header{{Name: "Content-Encoding", Value: "gzip"}}, RespBody: Body{Data: gz}}}}
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"encoding":"gzip","decoded":"{\"next_cursor\":\"abc\"}"`) {
		t.Fatalf("no decoded body in %s", b)
	}
	var back Session
	if err := back.UnmarshalJSON(b); err != nil || !bytes.Equal(back.Exchanges[0].RespBody.Data, gz) {
		t.Fatalf("read back %v: %q", err, back.Exchanges[0].RespBody.Data)
	}
}

// TestDecodePrefix: the first bytes of an encoded body, cut anywhere past
// the coding's own header, decode to the first bytes of its content, in
// every coding a capture meets.
func TestDecodePrefix(t *testing.T) {
	var content []byte
	for i := range 40000 {
		content = fmt.Appendf(content, `{"token":"t%x","n":%d}`, i*i*7919, i) // about 1 MB, compressible but not all alike
	}
	for _, coding := range []string{"gzip", "deflate", "br", "zstd"} {
		enc, err := Encode(content, []string{coding})
		if err != nil {
			t.Fatal(err)
		}
		got := DecodePrefix(enc[:len(enc)*3/4], []string{coding}, 1<<20)
		if len(got) < 1000 || !bytes.Equal(got, content[:len(got)]) {
			t.Errorf("%s: three quarters of the stream decode to %d bytes, not the content's start", coding, len(got))
		}
		if got := DecodePrefix(enc, []string{coding}, 100); !bytes.Equal(got, content[:100]) {
			t.Errorf("%s: the limit gives %d bytes, want 100", coding, len(got))
		}
	}
	if got := DecodePrefix([]byte("not gzip at all"), []string{"gzip"}, 100); got != nil {
		t.Errorf("garbage decodes to %q", got)
	}
}
