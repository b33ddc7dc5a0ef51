package replay

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkJSONAt takes a live id from a listing of 50 projects (about
// 4 KB), walking the bytes and, for comparison, decoding the document as
// extract did before.
//
//	go test -run XXX -bench JSONAt -benchmem ./replay/
func BenchmarkJSONAt(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"count":50,"results":[`)
	for i := range 50 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"id":` + strconv.Itoa(1000+i) + `,"name":"project ` + strconv.Itoa(i) + `","owner":{"login":"ann"},"tags":["go","load"],"stars":12}`)
	}
	sb.WriteString(`],"next":null}`)
	doc, path := []byte(sb.String()), []any{"results", 37, "id"}
	for _, tc := range []struct {
		name string
		at   func([]byte, []any) (string, bool)
	}{{"walk", jsonAt}, {"decode", decodedAt}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if v, ok := tc.at(doc, path); !ok || v != "1037" {
					b.Fatal(v)
				}
			}
		})
	}
}
