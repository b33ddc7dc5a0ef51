package traces

import (
	"fmt"
	"path"
	"strings"
)

// Path patterns are the one syntax in which thrive matches request paths:
// capture's profile rules (path: /**/import/**) and the endpoint names of
// replay's --endpoint (POST /api/import/{kind}/). A pattern is a path of
// segments split at "/", and each segment of the pattern matches one of
// the request's path (its query left out):
//
//   - a plain segment matches itself;
//   - {name} matches any one segment that is not empty, and names it in an
//     endpoint name;
//   - a segment with *, ? or [...] is a glob within the segment, as
//     path.Match reads it (* alone: any one segment);
//   - ** matches any number of segments, none included.

// CheckPathPattern reports what is wrong with a path pattern, if anything:
// it must begin with "/", and its globs must be well formed.
func CheckPathPattern(pattern string) error {
	if !strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("path pattern %q: want a path beginning with /", pattern)
	}
	for seg := range strings.SplitSeq(pattern, "/") {
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("path pattern %q: segment %q: %w", pattern, seg, err)
		}
	}
	return nil
}

// MatchPath reports whether the path of url (a path, or an absolute URL;
// its query and fragment left out) matches pattern.
func MatchPath(pattern, url string) bool {
	p, _, _ := strings.Cut(RequestURI(url), "?")
	p, _, _ = strings.Cut(p, "#")
	return matchSegments(strings.Split(pattern, "/"), strings.Split(p, "/"))
}

func matchSegments(pattern, p []string) bool {
	for len(pattern) > 0 {
		if pattern[0] == "**" {
			for i := 0; i <= len(p); i++ {
				if matchSegments(pattern[1:], p[i:]) {
					return true
				}
			}
			return false
		}
		if len(p) == 0 || !matchSegment(pattern[0], p[0]) {
			return false
		}
		pattern, p = pattern[1:], p[1:]
	}
	return len(p) == 0
}

func matchSegment(pattern, seg string) bool {
	if strings.HasPrefix(pattern, "{") && strings.HasSuffix(pattern, "}") {
		return seg != ""
	}
	ok, _ := path.Match(pattern, seg)
	return ok
}
