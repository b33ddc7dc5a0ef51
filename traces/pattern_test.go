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

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"512", 512, ""},
		{"64KB", 64000, ""},
		{"1MiB", 1 << 20, ""},
		{" 2 GiB ", 2 << 30, ""},
		{"1.5k", 1500, ""},
		{"lots", 0, `size "lots": want a number of bytes such as 512, 64KB or 1MiB`},
		{"-1", 0, `size "-1": want a number of bytes such as 512, 64KB or 1MiB`},
		{"3 parsecs", 0, `size "3 parsecs": unknown unit "parsecs"`},
	} {
		got, err := traces.ParseBytes(tc.in)
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("%q: %d, %v; want the error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if tc.err == "" && got >= 1024 {
			if back, err := traces.ParseBytes(traces.FormatBytes(got)); err != nil || back < got*95/100 || back > got*105/100 {
				t.Errorf("%q: FormatBytes %q reads back as %d, %v", tc.in, traces.FormatBytes(got), back, err)
			}
		}
	}
}
