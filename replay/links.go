package replay

import (
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// A page gives its visitor values in its links as well as in its forms:
// the id of each row of a list in the row's edit and delete links, a
// signed cursor in the link to the next page, a one-time token in a form's
// action. A value in a link is found again in a live page by the link's
// shape: the same URL with that value's part a wildcard, and the same
// occurrence among the links of that shape (the second row's edit link is
// the second link to /posts/{id}/edit). The live page of a replayed user
// lists its own rows in the same order as the recorded page listed the
// recorded user's.

// linkAttrRE finds the URLs an HTML page links to: anchors, forms, and
// whatever else names a URL in href or action.
var linkAttrRE = regexp.MustCompile(`(?i)\b(?:href|action|data-url|data-href)\s*=\s*"([^"]*)"`)

// maxLinks bounds the links of one page that are looked at.
const maxLinks = 2000

// linkValues returns the values a page's links carry: path segments that
// are ids (digits, or long with digits) and query values, each with the
// shape that finds it again.
func linkValues(body []byte) []candidate {
	var out []candidate
	shapes := map[string]int{} // expression → occurrences so far
	for _, m := range linkAttrRE.FindAllSubmatch(body, maxLinks) {
		link := html.UnescapeString(string(m[1]))
		if strings.HasPrefix(link, "#") || strings.HasPrefix(link, "javascript:") || strings.HasPrefix(link, "mailto:") {
			continue
		}
		if i := strings.Index(link, "://"); i >= 0 {
			// An absolute link names the recorded host: its shape is
			// its path, whatever host the live page names.
			rest := link[i+3:]
			j := strings.IndexAny(rest, "/?#")
			if j < 0 {
				continue
			}
			link = rest[j:]
		}
		path, query, _ := strings.Cut(link, "?")
		query, _, _ = strings.Cut(query, "#")
		segs := strings.Split(path, "/")
		for j, seg := range segs {
			if !idSegment(seg) || slugID(seg) != "" && !isDigits(seg) && len(seg) < minValue {
				continue
			}
			var b strings.Builder
			for k, s := range segs {
				if k > 0 {
					b.WriteString("/")
				}
				switch {
				case k == j:
					b.WriteString(`([^/"?#]+)`)
				case idSegment(s):
					// Another id of the link (a card's in its board's
					// link): any, as the live page has its own.
					b.WriteString(`[^/"?#]+`)
				default:
					b.WriteString(regexp.QuoteMeta(s))
				}
			}
			b.WriteString(`[?#"]`)
			c := linkCandidate(seg, b.String(), shapes)
			if j > 0 {
				c.context = segs[j-1]
			}
			out = append(out, c)
		}
		if query == "" {
			continue
		}
		vals, err := url.ParseQuery(query)
		if err != nil {
			continue
		}
		for name, vs := range vals {
			for _, v := range vs {
				if len(v) < minValue && !idName(name) && !isDigits(v) {
					continue
				}
				expr := regexp.QuoteMeta(path) + `\?(?:[^"]*?(?:&|&amp;))?` + regexp.QuoteMeta(url.QueryEscape(name)) + `=([^"&#]*)`
				c := linkCandidate(v, expr, shapes)
				if esc := url.QueryEscape(v); esc != v {
					// The live value is taken as it stands in the page:
					// encoded.
					c.value = esc
				}
				out = append(out, c)
			}
		}
	}
	return out
}

// linkCandidate is the value v of a link whose shape is expr, the next
// occurrence of that shape.
func linkCandidate(v, expr string, shapes map[string]int) candidate {
	n := shapes[expr]
	shapes[expr] = n + 1
	return candidate{value: v, short: shortValue(v),
		place: place{expr: `(?i)(?:href|action|data-url|data-href)\s*=\s*"[^"]*?` + expr, nth: n,
			label: "link " + strings.ReplaceAll(expr, `([^/"?#]+)`, "{id}") + " #" + strconv.Itoa(n+1)}}
}

// idSegment reports a path segment that is an id: digits, a long value
// with digits, or a slug that begins with an id.
func idSegment(s string) bool {
	return isDigits(s) || len(s) >= minValue && strings.ContainsAny(s, "0123456789") || slugID(s) != ""
}
