package traces_test

import (
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

func TestMatchPath(t *testing.T) {
	for _, tc := range []struct {
		pattern, url string
		want         bool
	}{
		{"/api/*/", "/api/tools/", true},
		{"/api/*/", "/api/tools/x/", false},
		{"/api/**", "/api/tools/x/", true},
		{"/api/**", "/api", true}, // ** matches no segment too
		{"/api/**", "/apix", false},
		{"/**/chat/**", "/chat/", true},
		{"/**/chat/**", "/a/b/chat", true},
		{"/**/chat/**", "/a/chatter/", false},
		{"/**", "/", true},
		{"/p/[0-9]*/", "/p/12/", true},
		{"/api/import/{kind}/", "/api/import/csv/", true},
		{"/api/import/{kind}/", "/api/import//", false}, // {name} is never empty
		{"/api/import/{kind}/", "https://shop.test/api/import/csv/?dry=1", true},
		{"/api/items/{id}", "/api/items/7#top", true},
	} {
		if got := traces.MatchPath(tc.pattern, tc.url); got != tc.want {
			t.Errorf("MatchPath(%q, %q) = %v", tc.pattern, tc.url, got)
		}
	}
}

func TestCheckPathPattern(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"/ok/{x}/**", ""},
		{"no/slash", `path pattern "no/slash": want a path beginning with /`},
		{"/bad/[", `path pattern "/bad/[": segment "[": syntax error in pattern`},
	} {
		err := traces.CheckPathPattern(tc.pattern)
		if got := ""; err != nil {
			got = err.Error()
			if got != tc.want {
				t.Errorf("%q: %q, want %q", tc.pattern, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%q: no error, want %q", tc.pattern, tc.want)
		}
	}
}
