//go:build !race

package capture

import (
	"testing"
)

// TestRedactAllocatesNothingWithoutSecrets: a JSON answer, a query and a
// name with no secret in them are scanned without allocating, and the
// documents are returned as they were, not copied.
func TestRedactAllocatesNothingWithoutSecrets(t *testing.T) {
	doc := benchSessions()["json-api"].Exchanges[1].RespBody.Data
	sc := &secrets{rd: NewRedactor(nil), ph: map[string]secret{}}
	sc.jsonFields(doc) // the scratch stack, once
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"json", func() {
			if got := sc.jsonFields(doc); &got[0] != &doc[0] {
				t.Fatal("copied")
			}
		}},
		{"query", func() { sc.query("/api/projects/?page=2&ordering=-updated_at&author=ann#top") }},
		{"name", func() { secretName(doc[2:7], inJSON); secretName("X-Amz-Content-Sha256", inHeader) }},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocations", tc.name, n)
		}
	}
}
