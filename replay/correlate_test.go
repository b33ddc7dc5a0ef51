package replay

import (
	"fmt"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

func exch(method, url, reqBody, respBody string, hs ...traces.Header) traces.Exchange {
	return traces.Exchange{Method: method, URL: url, Status: 200, ReqHeader: hs,
		ReqBody: traces.Body{Data: []byte(reqBody)}, RespBody: traces.Body{Data: []byte(respBody)}}
}

// rules lists a session's correlations as "rule = value -> exchange indices".
func rules(s *traces.Session) []string { return rulesWith(s, nil) }

// sameRules fails t unless got and want hold the same rules, in any order.
func sameRules(t *testing.T, got []string, want ...string) {
	t.Helper()
	g, w := strings.Join(got, "\n"), strings.Join(want, "\n")
	if sortLines(g) != sortLines(w) {
		t.Fatalf("rules\n%s\nwant\n%s", g, w)
	}
}

func TestCorrelateFindsServerValues(t *testing.T) {
	s := &traces.Session{Exchanges: []traces.Exchange{
		// 0: nested JSON gives a job id and a token; small values abound.
		exch("POST", "/api/import/github/", `{"url":"https://github.com/x/y"}`,
			`{"job":{"id":"a1b2c3d4e5f6","state":"pending","n":1,"ok":true,"year":2024},"auth":{"token":"tok-9f8e7d6c5b4a"},"items":[{"pid":123456}]}`),
		// 1: the id in the path.
		exch("GET", "/api/import/jobs/a1b2c3d4e5f6/", "", `{"state":"done","project":987654}`),
		// 2: the token in a header, the project in the query, true and 1
		// in the body by coincidence.
		exch("POST", "/api/projects/?id=987654", `{"ok":true,"n":1,"year":2024}`, `{}`,
			traces.Header{Name: "Authorization", Value: "Bearer tok-9f8e7d6c5b4a"}),
		// 3: a longer number that contains 123456 is not it.
		exch("GET", "/api/projects/1234567/", "", `{}`),
		// 4: the array element's id in a body.
		exch("POST", "/api/star/", `{"project": 123456}`, `{}`),
	}}
	// 5: a WebSocket message sends the job id.
	ws := exch("GET", "/ws/chat/", "", "")
	ws.WebSocket = &traces.WebSocket{Frames: []traces.Frame{{FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`{"job":"a1b2c3d4e5f6"}`)}}}}
	s.Exchanges = append(s.Exchanges, ws)
	sameRules(t, rules(s),
		"POST /api/import/github/ $.job.id = a1b2c3d4e5f6 -> 1,5",
		"POST /api/import/github/ $.auth.token = tok-9f8e7d6c5b4a -> 2",
		"GET /api/import/jobs/a1b2c3d4e5f6/ $.project = 987654 -> 2",
		"POST /api/import/github/ $.items[0].pid = 123456 -> 4",
	)
}

func sortLines(s string) string {
	l := strings.Split(s, "\n")
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if l[j] < l[i] {
				l[i], l[j] = l[j], l[i]
			}
		}
	}
	return strings.Join(l, "\n")
}

// A value the client sent first is the client's: the server echoing it
// back does not make it the server's.
func TestCorrelateIgnoresClientValues(t *testing.T) {
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("POST", "/api/search/", `{"q":"kubernetes"}`, `{"q":"kubernetes","hits":[]}`),
		exch("GET", "/api/search/?q=kubernetes", "", `{}`),
	}}
	if r := rules(s); len(r) != 0 {
		t.Fatalf("rules %v", r)
	}
}

func TestPlaceExtractAndSubstitute(t *testing.T) {
	p := place{path: []any{"job", "items", 1, "id"}}
	v, ok := p.extract([]byte(`{"job":{"items":[{"id":"x"},{"id":"live-id-42"}]}}`), nil)
	if !ok || v != "live-id-42" {
		t.Fatalf("extract %q %v", v, ok)
	}
	if _, ok := p.extract([]byte(`{"job":{}}`), nil); ok {
		t.Fatal("found a value that is not there")
	}
	raw := []byte("POST /api/x/rec-000001/ HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n{\"id\":\"rec-000001\"}\n")
	got := string(substitute(nil, raw, []substitution{{old: "rec-000001", new: "live-1"}}))
	want := "POST /api/x/live-1/ HTTP/1.1\r\nHost: h\r\nContent-Length: 16\r\n\r\n{\"id\":\"live-1\"}\n"
	if got != want {
		t.Fatalf("substitute\n%q\nwant\n%q", got, want)
	}
	// Into a buffer that held another request, with the header in lower
	// case and a body that grows past ten times its length in digits.
	dst := []byte("GET /old HTTP/1.1\r\nHost: old\r\n\r\n")
	raw = []byte("POST /x HTTP/1.1\r\ncontent-length: 9\r\nx-content-length: 9\r\n\r\n{\"v\":\"a\"}")
	got = string(substitute(dst, raw, []substitution{{old: `"a"`, new: `"abcdefgh"`}}))
	want = "POST /x HTTP/1.1\r\ncontent-length: 16\r\nx-content-length: 9\r\n\r\n{\"v\":\"abcdefgh\"}"
	if got != want {
		t.Fatalf("substitute into a used buffer\n%q\nwant\n%q", got, want)
	}
}

// TestShortIDsAreReplacedInIDPositionsOnly: a short id (20) is replaced as
// a path segment, a query, form or JSON value, and nowhere else: not in
// the Content-Length, a header, a longer number or a word.
func TestShortIDsAreReplacedInIDPositionsOnly(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"path and query", "GET /p/20/items?id=20&page=200 HTTP/1.1\r\nX-Year: 20\r\n\r\n",
			"GET /p/731/items?id=731&page=200 HTTP/1.1\r\nX-Year: 20\r\n\r\n"},
		{"last segment", "GET /p/20 HTTP/1.1\r\n\r\n", "GET /p/731 HTTP/1.1\r\n\r\n"},
		{"json", "POST /x HTTP/1.1\r\nContent-Length: 20\r\n\r\n{\"a\":20,\"b\":[20],\"c\":\"20\",\"d\":\"v20\"}",
			"POST /x HTTP/1.1\r\nContent-Length: 39\r\n\r\n{\"a\":731,\"b\":[731],\"c\":\"731\",\"d\":\"v20\"}"},
		{"form", "POST /x HTTP/1.1\r\nContent-Length: 15\r\n\r\nproject=20&n=20", "POST /x HTTP/1.1\r\nContent-Length: 17\r\n\r\nproject=731&n=731"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(substitute(nil, []byte(tc.raw), []substitution{{old: "20", new: "731", idOnly: true}}))
			if got != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestCorrelateShortIDs: small integers and short slugs under id-like names
// are carried over when a later request sends them in an id position; a
// small number without such a name, or one the client sent first, is not.
func TestCorrelateShortIDs(t *testing.T) {
	created := exch("POST", "/api/import/", `{"url":"x","page":3}`, `{"project_id":201,"job":{"id":7,"slug":"ab"},"count":42,"page":3,"tags_ids":[11,12]}`)
	created.RespHeader = []traces.Header{{Name: "Location", Value: "http://app.test/api/projects/201/runs/58/"}}
	s := &traces.Session{Exchanges: []traces.Exchange{
		created,
		exch("GET", "/api/projects/201/", "", `{}`),
		exch("GET", "/api/jobs/7/?count=42&page=3", "", `{}`),
		exch("POST", "/api/tag/", `{"tag":12,"slug":"ab"}`, `{}`),
		exch("GET", "/api/runs/58", "", `{}`),
		exch("GET", "/api/about/2010/", "", `{}`), // 201 inside a longer number
	}}
	sameRules(t, rules(s),
		"POST /api/import/ $.project_id = 201 -> 1",
		"POST /api/import/ $.job.id = 7 -> 2",
		"POST /api/import/ $.job.slug = ab -> 3",
		"POST /api/import/ $.tags_ids[1] = 12 -> 3",
		"POST /api/import/ header Location segment 5 = 58 -> 4",
	)
	vars, _ := correlate(s, nil)
	for _, v := range vars {
		if !v.short || v.why() != "id-like name" {
			t.Errorf("%s: short %v, why %q", v.rule, v.short, v.why())
		}
	}
}

func TestCorrelationRulesFile(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no source", "add:\n  - from: GET /x/\n", "add 1: want from and one of json, header or regex"},
		{"two sources", "add:\n  - from: GET /x/\n    json: $.a\n    header: X\n", "add 1: want from and one of json, header or regex"},
		{"regex without a group", "add:\n  - from: GET /x/\n    regex: 'no group'\n", `add 1: regex "no group": want a valid expression with one group`},
		{"json path without $", "add:\n  - from: GET /x/\n    json: 'a.b'\n", `add 1: json path "a.b": want it to start with $`},
		{"bad pattern", "disable:\n  - '['\n", `disable "[": syntax error in pattern`},
		{"unknown field", "unknown: 1\n", "field unknown not found"},
	} {
		if _, err := LoadCorrelationRules(strings.NewReader(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	rules, err := LoadCorrelationRules(strings.NewReader(`
disable:
  - "POST /login/ $.next*"
add:
  - from: "GET /login/"
    regex: 'name="csrfmiddlewaretoken" value="([^"]+)"'
  - from: "POST /api/token/"
    json: "$.data[0].t"
`))
	if err != nil {
		t.Fatal(err)
	}
	s := &traces.Session{Exchanges: []traces.Exchange{
		// An HTML form's hidden input, found only by the added regex.
		exch("GET", "/login/", "", `<form><input type="hidden" name="csrfmiddlewaretoken" value="Zx9Q"></form>`),
		exch("POST", "/login/", "csrfmiddlewaretoken=Zx9Q&user=ann", `{"next":"/api/projects/?page=abcdef2"}`),
		// A short token the detector would leave alone.
		exch("POST", "/api/token/", "", `{"data":[{"t":"k42"}]}`),
		exch("GET", "/api/projects/?page=abcdef2", "", `{}`, traces.Header{Name: "Authorization", Value: "Bearer k42"}),
	}}
	// The login's submission of the login page's form takes its field
	// from the live form too, as a browser would.
	const submitted = "GET /login/ form POST /login/ #1 csrfmiddlewaretoken = csrfmiddlewaretoken=Zx9Q -> 1"
	sameRules(t, rulesWith(s, rules),
		`GET /login/ regex name="csrfmiddlewaretoken" value="([^"]+)" = Zx9Q -> 1`,
		submitted,
		"POST /api/token/ $.data[0].t = k42 -> 3",
	)
	// Without the file, the next page link (and its query's value) and
	// the form are found, and the rest is not.
	sameRules(t, rulesWith(s, nil), "POST /login/ $.next = /api/projects/?page=abcdef2 -> 3", "POST /login/ $.next query page = abcdef2 -> 3", submitted)
}

// rulesWith is rules with a rules file.
func rulesWith(s *traces.Session, rs *CorrelationRules) []string {
	vars, uses := correlate(decoded(s), rs)
	var out []string
	for k, v := range vars {
		var at []string
		for i, u := range uses {
			for _, x := range u {
				if x == k {
					at = append(at, fmt.Sprint(i))
				}
			}
		}
		out = append(out, fmt.Sprintf("%s = %s -> %s", v.rule, v.recorded, strings.Join(at, ",")))
	}
	return out
}

// TestCorrelateHTMLAndHeaders: tokens in a form's hidden input, in a meta
// tag and in a custom answer header are carried over; the live values are
// found again in a live page.
func TestCorrelateHTMLAndHeaders(t *testing.T) {
	page := `<html><head><meta name="csrf-token" content="meta-tok-123456"></head><body>
<form><input type="hidden" value="inp-tok-abcdef" name="authenticity_token"><input name="q" value="x"></form></body></html>`
	first := exch("GET", "/form", "", page)
	first.RespHeader = []traces.Header{{Name: "X-Request-Token", Value: "hdr-tok-778899"}, {Name: "Date", Value: "Fri, 27 Nov 2026 02:40:05 GMT"}}
	s := &traces.Session{Exchanges: []traces.Exchange{
		first,
		exch("POST", "/submit", "authenticity_token=inp-tok-abcdef&q=x", "",
			traces.Header{Name: "X-CSRF-Token", Value: "meta-tok-123456"}, traces.Header{Name: "X-Echo", Value: "hdr-tok-778899"}),
	}}
	sameRules(t, rules(s),
		"GET /form header X-Request-Token = hdr-tok-778899 -> 1",
		"GET /form form GET (its page) #1 authenticity_token = inp-tok-abcdef -> 1",
		"GET /form html csrf-token = meta-tok-123456 -> 1",
	)
	vars, _ := correlate(s, nil)
	live := []byte(`<meta content="live-meta" name="csrf-token"><input name="authenticity_token" type="hidden" value="live-input">`)
	for _, v := range vars {
		if v.place.header != "" {
			continue
		}
		got, ok := v.place.extract(live, nil)
		if !ok || !strings.HasPrefix(got, "live-") {
			t.Errorf("%s: extracted %q %v from a live page with the attributes in another order", v.rule, got, ok)
		}
	}
}

// TestSubstitutionIsOnePass: a live value is never replaced again by
// another rule (the id 12 of /projects/12 and the whole Location
// /projects/12 both live as 1205), whatever the rules' order.
func TestSubstitutionIsOnePass(t *testing.T) {
	raw := "GET /projects/12 HTTP/1.1\r\nHost: h\r\n\r\n"
	want := "GET /projects/1205 HTTP/1.1\r\nHost: h\r\n\r\n"
	for _, subs := range [][]substitution{
		{{old: "12", new: "1205", idOnly: true}, {old: "/projects/12", new: "/projects/1205"}},
		{{old: "/projects/12", new: "/projects/1205"}, {old: "12", new: "1205", idOnly: true}},
	} {
		if got := string(substitute(nil, []byte(raw), subs)); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestCorrelateInsideCompressedAnswers: values of gzip, br and zstd
// answers are found as those of plain ones, and checks see their shapes.
func TestCorrelateInsideCompressedAnswers(t *testing.T) {
	for _, coding := range []string{"gzip", "br", "zstd", "deflate"} {
		t.Run(coding, func(t *testing.T) {
			body, err := traces.Encode([]byte(`{"items":[{"id":7}],"next_cursor":"c-93f0a1b2"}`), []string{coding})
			if err != nil {
				t.Fatal(err)
			}
			feed := exch("GET", "/api/feed", "", "")
			feed.RespHeader = []traces.Header{{Name: "Content-Encoding", Value: coding}, {Name: "Content-Type", Value: "application/json"}}
			feed.RespBody = traces.Body{Data: body}
			s := &traces.Session{Exchanges: []traces.Exchange{feed, exch("GET", "/api/feed?cursor=c-93f0a1b2", "", "")}}
			sameRules(t, rules(s), "GET /api/feed $.next_cursor = c-93f0a1b2 -> 1")
			lib := FromSessions([]*traces.Session{s}, ForCheck())
			if sh := lib.recorded[0][0].shape; sh["$.next_cursor"] != "string" {
				t.Fatalf("the check sees the shape %v", sh)
			}
		})
	}
}

func TestAPIError(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"data":{"order":{"id":1}}}`, ""},
		{`{"data":null,"errors":[{"message":"no such order 201","path":["order"]}]}`, "graphql: no such order N"},
		{`{"errors":[{"message":"x","extensions":{"code":"UNAUTHENTICATED"}}]}`, "graphql: UNAUTHENTICATED"},
		{`{"data":{},"errors":[]}`, ""},
		{`[{"data":{}},{"errors":[{"message":"bad"}]}]`, "graphql: bad"},
		{`{"jsonrpc":"2.0","error":{"code":-32602,"message":"unknown order"},"id":1}`, "json-rpc: -N unknown order"},
		{`{"jsonrpc":"2.0","result":{"error_count":0},"id":1}`, ""},
		{`not json "error"`, ""},
	} {
		if got := string(apiError([]byte(tc.body))); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.body, got, tc.want)
		}
	}
}
