package demo_test

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/demo"
)

// metric returns the value of the series series (its name and labels, as
// /metrics writes them) in the metrics m, and whether it is there.
func metric(t testing.TB, m, series string) (float64, bool) {
	t.Helper()
	for line := range strings.Lines(m) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f, true
		}
	}
	return 0, false
}

// changes returns demo_build_changes_total of a change and detail.
func changes(t testing.TB, m, change, detail string) float64 {
	t.Helper()
	v, ok := metric(t, m, fmt.Sprintf("demo_build_changes_total{change=%q,detail=%q}", change, detail))
	if !ok {
		t.Fatalf("no demo_build_changes_total of %s %s in\n%s", change, detail, m)
	}
	return v
}

// exchange is an answer to one request of a fixed sequence.
type exchange struct {
	req  string
	code int
	body string
}

// play logs in and sends a fixed sequence of requests that reach every JSON
// endpoint but the imports (whose ids are made of the time), and returns
// the answers.
func play(t *testing.T, base string) []exchange {
	t.Helper()
	c := newClient(t, base)
	var out []exchange
	do := func(method, path, body string) {
		csrf := ""
		if method == "POST" {
			csrf = c.cookie(demo.CSRFCookie)
		}
		code, _, b := c.do(method, path, body, csrf)
		out = append(out, exchange{method + " " + path, code, b})
	}
	do("GET", "/api/auth/me/", "")
	out[len(out)-1].req += " (anonymous)"
	do("POST", "/api/auth/login/", `{"username":"ann","password":"wrong"}`)
	out[len(out)-1].req += " (wrong)"
	do("POST", "/api/auth/login/", fmt.Sprintf(`{"username":"ann","password":%q}`, demo.Password("ann")))
	do("GET", "/api/auth/me/", "")
	for _, page := range []string{"", "?page=2&page_size=50", "?page=99"} {
		do("GET", "/api/projects/"+page, "")
	}
	for _, id := range []string{"1", "7", "500", "501"} {
		do("GET", "/api/projects/"+id+"/", "")
	}
	do("GET", "/api/tools/", "")
	for _, q := range []string{"video", "agent", "zzz", ""} {
		do("GET", "/api/search/?q="+q, "")
	}
	do("POST", "/api/chat/", `{"message":"one two three"}`)
	do("POST", "/api/chat/", `{}`)
	do("GET", "/nope", "")
	return out
}

// editField is the test's own edit of a decoded JSON value: it drops the
// field at path (keys, and "[]" for each element), or renames it to to.
// It returns how many fields it changed.
func editField(v any, path []string, to string) int {
	switch d := v.(type) {
	case []any:
		if path[0] != "[]" {
			return 0
		}
		n := 0
		for _, e := range d {
			n += editField(e, path[1:], to)
		}
		return n
	case map[string]any:
		e, ok := d[path[0]]
		if !ok {
			return 0
		}
		if len(path) > 1 {
			return editField(e, path[1:], to)
		}
		delete(d, path[0])
		if to != "" {
			d[to] = e
		}
		return 1
	}
	return 0
}

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v: %.200s", err, s)
	}
	return v
}

// TestFieldChanges plays the same requests against the backend as it is
// and as a build that drops or renames a field, and finds exactly that
// change in every answer that had the field, and nowhere else; the changed
// build's counter says how many answers it changed.
func TestFieldChanges(t *testing.T) {
	base := start(t, fast(), demo.WithRateLimit(0, 1))
	want := play(t, base)
	if m := scrape(t, base); strings.Contains(m, "demo_build_changes_total{") {
		t.Fatalf("the backend as it is counts build changes:\n%s", m)
	}
	for _, tc := range []struct {
		name   string
		opt    demo.Option
		change string // the counter's labels
		detail string
		path   []string
		to     string
		// answers the field is in: requests, or all
		in []string
	}{
		{"drop in arrays", demo.WithDropField("$.results[].stars"), "drop-field", "$.results[].stars", []string{"results", "[]", "stars"}, "",
			[]string{"GET /api/projects/", "GET /api/projects/?page=2&page_size=50", "GET /api/search/?q=video", "GET /api/search/?q=agent"}},
		{"drop at the top", demo.WithDropField("$.detail"), "drop-field", "$.detail", []string{"detail"}, "",
			[]string{"GET /api/auth/me/ (anonymous)", "POST /api/auth/login/", "GET /api/projects/?page=99", "GET /api/projects/501/", "GET /api/search/?q=", "GET /nope"}},
		{"rename in an object", demo.WithRenameField("$.owner.username", "login"), "rename-field", "$.owner.username=login", []string{"owner", "username"}, "login",
			[]string{"GET /api/projects/1/", "GET /api/projects/7/", "GET /api/projects/500/"}},
		{"rename over a member", demo.WithRenameField("$.results[].title", "slug"), "rename-field", "$.results[].title=slug", []string{"results", "[]", "title"}, "slug",
			[]string{"GET /api/projects/", "GET /api/projects/?page=2&page_size=50", "GET /api/search/?q=video", "GET /api/search/?q=agent"}},
		{"a path nothing has", demo.WithDropField("$.results[].nope"), "drop-field", "$.results[].nope", []string{"results", "[]", "nope"}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := start(t, fast(), demo.WithRateLimit(0, 1), tc.opt)
			got := play(t, changed)
			edited := 0
			for i, w := range want {
				g := got[i]
				if g.code != w.code {
					t.Fatalf("%s: %d, as it is %d", w.req, g.code, w.code)
				}
				v := decode(t, w.body)
				n := editField(v, tc.path, tc.to)
				had := n > 0
				if had != slices.Contains(tc.in, w.req) {
					t.Fatalf("%s: the field is there %v, want %v", w.req, had, !had)
				}
				if !had {
					if g.body != w.body {
						t.Fatalf("%s: an answer without the field changed:\n%s\nas it is:\n%s", w.req, g.body, w.body)
					}
					continue
				}
				edited++
				if !reflect.DeepEqual(decode(t, g.body), v) {
					t.Fatalf("%s: the answer is not the one as it is with %s changed:\n%.300s\nas it is:\n%.300s", w.req, tc.detail, g.body, w.body)
				}
			}
			if n := changes(t, scrape(t, changed), tc.change, tc.detail); n != float64(edited) {
				t.Fatalf("the backend counts %v answers changed, the test %d", n, edited)
			}
		})
	}
}

// TestFieldChangesKeepTheRest holds a changed answer to its bytes: the
// field goes, and everything else stays as it was written, members in
// their order.
func TestFieldChangesKeepTheRest(t *testing.T) {
	base := start(t, fast(), demo.WithRateLimit(0, 1))
	changed := start(t, fast(), demo.WithRateLimit(0, 1), demo.WithDropField("$.results[].stars"), demo.WithRenameField("$.count", "total"))
	for _, path := range []string{"/api/projects/?page=3", "/api/search/?q=video"} {
		_, _, was := newClient(t, base).do("GET", path, "", "")
		_, h, got := newClient(t, changed).do("GET", path, "", "")
		want := regexp.MustCompile(`"stars":\d+,`).ReplaceAllString(was, "")
		want = strings.Replace(want, `"count":`, `"total":`, 1)
		if got != want {
			t.Fatalf("GET %s:\n%s\nwant\n%s", path, got, want)
		}
		if h.Get("Content-Length") != strconv.Itoa(len(got)) {
			t.Fatalf("GET %s: Content-Length %s of %d bytes", path, h.Get("Content-Length"), len(got))
		}
	}
}

// TestFailRatio fails about the share asked of one endpoint's requests,
// the same ones on every backend of the same seed, and answers the rest as
// the backend as it is does.
func TestFailRatio(t *testing.T) {
	const n, ratio = 400, 0.2
	const tools, detail = "GET /api/tools/", "GET /api/projects/{id}/"
	run := func(opts ...demo.Option) (fails []int, bodies []string, metrics string) {
		base := start(t, append([]demo.Option{fast(), demo.WithRateLimit(0, 1)}, opts...)...)
		c := newClient(t, base)
		for i := range n {
			code, _, body := c.do("GET", "/api/tools/", "", "")
			switch code {
			case 500:
				fails = append(fails, i)
				if body != `{"detail":"A server error occurred."}` {
					t.Fatalf("a failure says %s", body)
				}
			case 200:
			default:
				t.Fatalf("request %d: %d", i, code)
			}
			bodies = append(bodies, body)
			if code, _, _ := c.do("GET", fmt.Sprintf("/api/projects/%d/", 1+i), "", ""); code != 200 {
				t.Fatalf("%s is not changed, and answers %d", detail, code)
			}
		}
		return fails, bodies, scrape(t, base)
	}
	_, was, _ := run()
	fails, got, m := run(demo.WithFailRatio(tools, ratio), demo.WithSeed(7))
	// A binomial count of 400 draws at 0.2: mean 80, deviation 8. The seed
	// is fixed, so this is a check of the draws, not a flaky one.
	if k := len(fails); math.Abs(float64(k)-n*ratio) > 4*math.Sqrt(n*ratio*(1-ratio)) {
		t.Fatalf("%d of %d failed, want about %v", k, n, n*ratio)
	}
	for i := range n {
		if got[i] != was[i] && !slices.Contains(fails, i) {
			t.Fatalf("request %d did not fail, and its answer changed", i)
		}
	}
	if v := changes(t, m, "fail-ratio", tools); v != float64(len(fails)) {
		t.Fatalf("the backend counts %v failures, the test %d", v, len(fails))
	}
	if v, _ := metric(t, m, `http_requests_total{code="500",endpoint="GET /api/tools/",method="GET"}`); v != float64(len(fails)) {
		t.Fatalf("http_requests_total counts %v answers 500, the test %d", v, len(fails))
	}
	if _, ok := metric(t, m, fmt.Sprintf("demo_build_changes_total{change=%q,detail=%q}", "fail-ratio", detail)); ok {
		t.Fatalf("an endpoint not changed has a counter")
	}
	again, _, _ := run(demo.WithFailRatio(tools, ratio), demo.WithSeed(7))
	if !reflect.DeepEqual(again, fails) {
		t.Fatalf("the same seed failed requests %v, then %v", fails, again)
	}
	other, _, _ := run(demo.WithFailRatio(tools, ratio), demo.WithSeed(8))
	if reflect.DeepEqual(other, fails) {
		t.Fatalf("another seed failed the same requests %v", fails)
	}
}

// tokenFrames sends each message over the chat's WebSocket and returns how
// many token frames each reply streamed, checking the done message.
func tokenFrames(t *testing.T, base string, msgs []string) []int {
	t.Helper()
	c := newClient(t, base)
	c.login("ann")
	conn, _, err := c.dialChat()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out []int
	for _, msg := range msgs {
		if err := conn.WriteJSON(map[string]string{"message": msg}); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			var m struct {
				Type   string `json:"type"`
				Index  int    `json:"index"`
				Tokens int    `json:"tokens"`
			}
			if err := conn.ReadJSON(&m); err != nil {
				t.Fatal(err)
			}
			if m.Type == "done" {
				if m.Tokens != i {
					t.Fatalf("done says %d tokens after %d", m.Tokens, i)
				}
				out = append(out, i)
				break
			}
			if m.Type != "token" || m.Index != i {
				t.Fatalf("frame %d is %+v", i, m)
			}
		}
	}
	// The backend counts a message once written, after the client may
	// have read it: its handler has counted all once it has ended, which
	// the connections gauge says.
	conn.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if v, _ := metric(t, scrape(t, base), "websocket_connections"); v == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the chat's handler did not end in 10 s after its client closed")
		}
		runtime.Gosched()
	}
	return out
}

func TestTokensScale(t *testing.T) {
	msgs := []string{"hi", "tell me about video projects for learning", strings.Repeat("word ", 30)}
	was := tokenFrames(t, start(t, fast()), msgs)
	if fmt.Sprint(was) != "[5 17 40]" {
		t.Fatalf("the backend as it is streams %v tokens", was)
	}
	for _, tc := range []struct {
		f    float64
		want []int
	}{
		{0.5, []int{3, 9, 20}},   // rounded half away from zero
		{2, []int{10, 34, 80}},   // past the 40 of the build as it is
		{0.01, []int{1, 1, 1}},   // at least one
		{1.05, []int{5, 18, 42}}, // 5.25 rounds to 5: that reply is as it was
	} {
		t.Run(fmt.Sprint(tc.f), func(t *testing.T) {
			base := start(t, fast(), demo.WithTokensScale(tc.f))
			got := tokenFrames(t, base, msgs)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("streamed %v tokens, want %v", got, tc.want)
			}
			m := scrape(t, base)
			replies := 0
			sent := 0
			for i := range got {
				if got[i] != was[i] {
					replies++
				}
				sent += got[i] + 1
			}
			if v := changes(t, m, "tokens-scale", strconv.FormatFloat(tc.f, 'g', -1, 64)); v != float64(replies) {
				t.Fatalf("the backend counts %v replies changed, want %d", v, replies)
			}
			if v, _ := metric(t, m, `websocket_messages_total{direction="sent"}`); v != float64(sent) {
				t.Fatalf("the backend sent %v messages, want %d", v, sent)
			}
		})
	}
}

// TestSlow holds a slowed endpoint to the latency model: with latencies
// of fixed length, the backend's own count of the delay it gave is the
// model's times the factor, and other endpoints are left as they are.
func TestSlow(t *testing.T) {
	const n = 20
	const tools, token = 40 * time.Microsecond, 10 * time.Microsecond
	opts := []demo.Option{
		demo.WithRateLimit(0, 1), demo.WithLatencyScale(1),
		demo.WithLatency(demo.ClassLogin, demo.Latency{}), demo.WithLatency(demo.ClassDetail, demo.Latency{}),
		demo.WithLatency(demo.ClassTools, demo.Latency{Median: tools, P99: tools}),
		demo.WithLatency(demo.ClassToken, demo.Latency{Median: token, P99: token}),
	}
	play := func(base string) []string {
		c := newClient(t, base)
		c.login("ann")
		var out []string
		for i := range n {
			for _, req := range [][2]string{{"GET", "/api/tools/"}, {"GET", fmt.Sprintf("/api/projects/%d/", 1+i)}, {"POST", "/api/chat/"}} {
				code, _, body := c.do(req[0], req[1], `{"message":"one two three"}`, c.cookie(demo.CSRFCookie))
				if code != 200 {
					t.Fatalf("%s %s: %d %s", req[0], req[1], code, body)
				}
				out = append(out, body)
			}
		}
		return out
	}
	base := start(t, opts...)
	was := play(base)
	if strings.Contains(scrape(t, base), "demo_build_delay_seconds_total{") {
		t.Fatal("the backend as it is counts a slowed delay")
	}
	const f, chatF = 1.5, 3.0
	changed := start(t, append(opts, demo.WithSlow("GET /api/tools/", f), demo.WithSlow("POST /api/chat/", chatF))...)
	if got := play(changed); !reflect.DeepEqual(got, was) {
		t.Fatal("a slower build answered otherwise")
	}
	m := scrape(t, changed)
	// The model as configured: each tools answer waits its class's
	// latency, each chat answer its 9 tokens'.
	for _, tc := range []struct {
		endpoint string
		model    time.Duration
		f        float64
	}{
		{"GET /api/tools/", tools, f},
		{"POST /api/chat/", 9 * token, chatF},
	} {
		if v := changes(t, m, "slow", tc.endpoint); v != n {
			t.Errorf("%s: %v answers slowed, want %d", tc.endpoint, v, n)
		}
		v, _ := metric(t, m, fmt.Sprintf("demo_build_delay_seconds_total{endpoint=%q}", tc.endpoint))
		if want := n * tc.f * tc.model.Seconds(); math.Abs(v-want) > 1e-12 {
			t.Errorf("%s: the backend gave %v s of delay, the model times %v %v s", tc.endpoint, v, tc.f, want)
		}
	}
	if _, ok := metric(t, m, `demo_build_delay_seconds_total{endpoint="GET /api/projects/{id}/"}`); ok {
		t.Error("an endpoint not slowed counts a delay")
	}
}

func TestBuildChangesAreValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  demo.Option
		want string
	}{
		{"no $", demo.WithDropField("results[].stars"), `field path "results[].stars": it does not begin with $`},
		{"an index", demo.WithDropField("$.results[0].stars"), "arrays fold with [], not an index"},
		{"an array", demo.WithDropField("$.results[]"), "it names no field"},
		{"the whole answer", demo.WithDropField("$"), "it names no field"},
		{"an empty key", demo.WithDropField("$.results..stars"), "empty key"},
		{"a bad new name", demo.WithRenameField("$.count", "a.b"), `new name "a.b": key "a.b" holds one of . [ ] =`},
		{"an unknown endpoint", demo.WithFailRatio("GET /api/nope/", 0.1), `endpoint "GET /api/nope/" is not served; endpoints (METHOD /path/pattern/): POST /api/auth/login/, `},
		{"a path without its method", demo.WithFailRatio("/api/tools/", 0.1), `endpoint "/api/tools/" is not served`},
		{"a ratio above 1", demo.WithFailRatio("GET /api/tools/", 1.5), "fail ratio 1.5 for GET /api/tools/: want a share in [0, 1]"},
		{"a factor of 0", demo.WithSlow("GET /api/tools/", 0), "slow GET /api/tools/: factor 0: want a number above 0"},
		{"no latency to slow", demo.WithSlow("GET /visit", 2), `endpoint "GET /visit" has no modelled latency; these have: POST /api/auth/login/`},
		{"a negative scale", demo.WithTokensScale(-1), "tokens scale: factor -1: want a number above 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := demo.New(tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestParseBuildChanges(t *testing.T) {
	var f demo.Faults
	for _, tc := range []struct {
		name  string
		parse func(string) (demo.Option, error)
		in    string
		want  string // "" for none
	}{
		{"drop", demo.ParseDropField, "$.results[].owner.username", ""},
		{"drop at the top of an array", demo.ParseDropField, "$[].id", ""},
		{"drop a bad path", demo.ParseDropField, "$.a[1]", "not an index"},
		{"rename", demo.ParseRenameField, "$.owner.username=login", ""},
		{"rename without a name", demo.ParseRenameField, "$.owner.username", "want PATH=NEWNAME"},
		{"rename to nothing", demo.ParseRenameField, "$.owner.username=", `new name "": empty key`},
		{"fail an endpoint", f.ParseFailRatio, "GET /api/projects/{id}/=0.25", ""},
		{"fail all", f.ParseFailRatio, "0.01", ""},
		{"fail too many", f.ParseFailRatio, "GET /api/tools/=2", "want ENDPOINT=R with R a share in [0, 1]"},
		{"fail all too many", f.ParseFailRatio, "2", `"2": want a share R in [0, 1], or ENDPOINT=R`},
		{"fail no endpoint", f.ParseFailRatio, "GET /api/nope/=0.1", `endpoint "GET /api/nope/" is not served`},
		{"slow", demo.ParseSlow, "GET /ws/chat/=1.2", ""},
		{"slow by nothing", demo.ParseSlow, "GET /api/tools/=-1", "want ENDPOINT=F with F above 0"},
		{"slow no factor", demo.ParseSlow, "GET /api/tools/", "want ENDPOINT=F"},
		{"tokens", demo.ParseTokensScale, "0.5", ""},
		{"tokens of 0", demo.ParseTokensScale, "0", `"0": want a factor above 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt, err := tc.parse(tc.in)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("parse(%q) = %v, want an error saying %q", tc.in, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := demo.New(opt); err != nil {
				t.Fatalf("the option: %v", err)
			}
		})
	}
	if f.ErrorRatio != 0.01 {
		t.Fatalf("--fail-ratio 0.01 set the error ratio %v", f.ErrorRatio)
	}
}

func TestEndpointsAreServed(t *testing.T) {
	eps := demo.Endpoints()
	if len(eps) != 12 || eps[4] != "GET /api/projects/{id}/" {
		t.Fatalf("Endpoints() = %q", eps)
	}
	// Every endpoint fails when asked to: each is one the server routes.
	var opts []demo.Option
	for _, ep := range eps {
		opts = append(opts, demo.WithFailRatio(ep, 1))
	}
	base := start(t, append(opts, fast(), demo.WithRateLimit(0, 1))...)
	c := newClient(t, base)
	for _, ep := range eps {
		method, path, _ := strings.Cut(ep, " ")
		path = strings.NewReplacer("{id}", "1", "{kind}", "github").Replace(path)
		// Unsafe methods need a session first; the login itself fails, so
		// those answer 403 before they reach the endpoint.
		code, _, _ := c.do(method, path, "{}", "")
		if want := map[bool]int{true: 403, false: 500}[method == "POST" && ep != "POST /api/auth/login/"]; code != want {
			t.Errorf("%s: %d, want %d", ep, code, want)
		}
	}
}
