package capture

import (
	"strings"
	"testing"
)

// TestJSONStrings: every string value of a document with its key, escaped
// quotes and backslashes kept inside their strings, array elements
// without a key, and a string cut short ending the scan.
func TestJSONStrings(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"a":"x\"y","b":["p","q\\\\"],"c":{"d":"e"}}`, `a=x\"y =p =q\\\\ d=e`},
		{`{"token" : "abc\\", "n": 7, "s":"\\\"quoted\\\""}`, `token=abc\\ s=\\\"quoted\\\"`},
		{`["one", "two"]`, `=one =two`},
		{`{"a":"ok","b":"cut \"`, `a=ok`},
		{`{"a":"ok","b":"cut \\`, `a=ok`},
	} {
		var got []string
		jsonStrings([]byte(tc.doc), func(key, value []byte) { got = append(got, string(key)+"="+string(value)) })
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%s: got %s, want %s", tc.doc, g, tc.want)
		}
	}
}

// FuzzClosingQuote holds closingQuote to the byte-at-a-time scan: a
// backslash escapes the byte after it.
func FuzzClosingQuote(f *testing.F) {
	for _, s := range []string{`abc"`, `a\"b"`, `a\\"`, `\\\"x"`, `no end`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		want := -1
		for j := 0; j < len(b); j++ {
			if b[j] == '\\' {
				j++
				continue
			}
			if b[j] == '"' {
				want = j
				break
			}
		}
		if got := closingQuote(b, 0); got != want {
			t.Fatalf("closingQuote(%q) = %d, want %d", s, got, want)
		}
	})
}
