package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/demo"
)

func (c *client) dialChat() (*websocket.Conn, int, error) {
	u := strings.Replace(c.base, "http", "ws", 1) + "/ws/chat/"
	d := websocket.Dialer{Jar: c.jar, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.DialContext(context.Background(), u, nil)
	code := 0
	if resp != nil {
		code = resp.StatusCode
		resp.Body.Close()
	}
	return conn, code, err
}

func TestChatSocketStreamsInOrder(t *testing.T) {
	base := start(t, fast())
	anon := newClient(t, base)
	if _, code, err := anon.dialChat(); err == nil || code != 403 {
		t.Fatalf("WebSocket without a session: status %d, err %v; want 403", code, err)
	}
	c := newClient(t, base)
	c.login("ann")
	conn, code, err := c.dialChat()
	if err != nil || code != 101 {
		t.Fatalf("dial: %d %v", code, err)
	}
	defer conn.Close()
	for _, msg := range []string{"hi", "tell me about video projects for learning"} {
		if err := conn.WriteJSON(map[string]string{"type": "message", "message": msg}); err != nil {
			t.Fatal(err)
		}
		want := min(40, max(5, 3+2*len(strings.Fields(msg))))
		for i := 0; ; i++ {
			var m struct {
				Type   string `json:"type"`
				Index  int    `json:"index"`
				Tokens int    `json:"tokens"`
			}
			if err := conn.ReadJSON(&m); err != nil {
				t.Fatalf("message %q, frame %d: %v", msg, i, err)
			}
			if m.Type == "done" {
				if i != want || m.Tokens != want {
					t.Fatalf("message %q: done after %d tokens (says %d), want %d", msg, i, m.Tokens, want)
				}
				break
			}
			if m.Type != "token" || m.Index != i {
				t.Fatalf("message %q: frame %d is %+v, want token %d", msg, i, m, i)
			}
		}
	}
}

func TestChatPost(t *testing.T) {
	base := start(t, fast())
	c := newClient(t, base)
	c.login("ann")
	code, _, body := c.do("POST", "/api/chat/", `{"message":"one two three"}`, c.cookie(demo.CSRFCookie))
	if code != 200 || !strings.Contains(body, `"tokens":9`) {
		t.Fatalf("%d %s", code, body)
	}
	if code, _, _ := c.do("POST", "/api/chat/", `{}`, c.cookie(demo.CSRFCookie)); code != 400 {
		t.Fatalf("empty message: %d, want 400", code)
	}
}

type started struct {
	JobID     uint64 `json:"job_id"`
	ProjectID uint64 `json:"project_id"`
	Status    string `json:"status"`
}

func (c *client) startImport(kind, src string) (int, started) {
	c.t.Helper()
	code, _, body := c.do("POST", "/api/import/"+kind+"/", fmt.Sprintf(`{"url":%q}`, src), c.cookie(demo.CSRFCookie))
	var s started
	if code == 202 {
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			c.t.Fatal(err)
		}
	}
	return code, s
}

func TestImportVisibleOnlyToItsSession(t *testing.T) {
	for _, tc := range []struct {
		name    string
		jobTime time.Duration
		status  string
		project string
	}{
		{"pending", time.Hour, `"status":"pending"`, `"status":"importing"`},
		{"done", 0, `"status":"done"`, `"status":"ready"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := start(t, demo.WithLatency(demo.ClassJob, demo.Latency{Median: tc.jobTime, P99: tc.jobTime}),
				demo.WithLatency(demo.ClassImport, demo.Latency{}), demo.WithLatency(demo.ClassDetail, demo.Latency{}),
				demo.WithLatency(demo.ClassLogin, demo.Latency{}))
			ann := newClient(t, base)
			ann.login("ann")
			bob := newClient(t, base)
			bob.login("bob")
			code, s := ann.startImport("github", "https://github.com/ann/notes")
			if code != 202 || s.Status != "pending" || s.JobID == 0 || s.ProjectID == 0 {
				t.Fatalf("start: %d %+v", code, s)
			}
			job := fmt.Sprintf("/api/import/jobs/%d/", s.JobID)
			proj := fmt.Sprintf("/api/projects/%d/", s.ProjectID)
			if code, _, body := ann.do("GET", job, "", ""); code != 200 || !strings.Contains(body, tc.status) || !strings.Contains(body, strconv.FormatUint(s.ProjectID, 10)) {
				t.Fatalf("creator's job: %d %s", code, body)
			}
			if code, _, body := ann.do("GET", proj, "", ""); code != 200 || !strings.Contains(body, tc.project) {
				t.Fatalf("creator's project: %d %s", code, body)
			}
			for _, path := range []string{job, proj} {
				if code, _, _ := bob.do("GET", path, "", ""); code != 404 {
					t.Fatalf("another session GET %s: %d, want 404", path, code)
				}
			}
			// A second import gets new ids.
			_, s2 := ann.startImport("youtube", "https://youtu.be/abc")
			if s2.JobID == s.JobID || s2.ProjectID == s.ProjectID {
				t.Fatalf("second import reused ids: %+v %+v", s, s2)
			}
		})
	}
}

func TestImportRejectsBadInput(t *testing.T) {
	base := start(t, fast())
	c := newClient(t, base)
	c.login("ann")
	for _, tc := range []struct {
		kind, src string
		want      int
	}{
		{"github", "https://example.com/x", 400},
		{"youtube", "http://youtube.com/watch?v=1", 400},
		{"vimeo", "https://vimeo.com/1", 404},
	} {
		if code, _ := c.startImport(tc.kind, tc.src); code != tc.want {
			t.Errorf("import %s %s: %d, want %d", tc.kind, tc.src, code, tc.want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	// One token every 1,000 s: after the burst of 3, nothing refills within
	// the test, so the counts are exact.
	base := start(t, fast(), demo.WithRateLimit(0.001, 3))
	c := newClient(t, base)
	c.login("ann") // takes no token: there is no session yet
	var codes []int
	for range 6 {
		code, h, _ := c.do("GET", "/api/tools/", "", "")
		codes = append(codes, code)
		if code == 429 {
			if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 900 {
				t.Fatalf("Retry-After %q, want about 1000 s", h.Get("Retry-After"))
			}
		}
	}
	if fmt.Sprint(codes) != "[200 200 200 429 429 429]" {
		t.Fatalf("codes %v", codes)
	}
	// Another session has its own bucket; anonymous requests are not limited.
	other := newClient(t, base)
	other.login("bob")
	if code, _, _ := other.do("GET", "/api/tools/", "", ""); code != 200 {
		t.Fatalf("another session: %d", code)
	}
	anon := newClient(t, base)
	for range 5 {
		if code, _, _ := anon.do("GET", "/api/tools/", "", ""); code != 200 {
			t.Fatalf("anonymous: %d", code)
		}
	}
}

func TestInjectedErrors(t *testing.T) {
	base := start(t, fast(), demo.WithFaults(demo.Faults{ErrorRatio: 0.25}))
	c := newClient(t, base)
	failed := 0
	for range 40 {
		code, _, _ := c.do("GET", "/api/tools/", "", "")
		switch code {
		case 500, 503:
			failed++
		case 200:
		default:
			t.Fatalf("status %d", code)
		}
	}
	if failed != 10 {
		t.Fatalf("%d of 40 failed, want exactly 10", failed)
	}
}

func TestInjectedResets(t *testing.T) {
	base := start(t, fast(), demo.WithFaults(demo.Faults{ResetRatio: 0.1}))
	// A new connection per request, so the client has no reason to retry.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resets := 0
	for range 20 {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", base+"/api/tools/", nil)
		resp, err := hc.Do(req)
		if err != nil {
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Fatalf("unexpected error %v", err)
			}
			resets++
			continue
		}
		resp.Body.Close()
	}
	if resets != 2 {
		t.Fatalf("%d of 20 requests were reset, want exactly 2", resets)
	}
}

func scrape(t testing.TB, base string) string {
	t.Helper()
	_, _, body := newClient(t, base).do("GET", "/metrics", "", "")
	return body
}

func TestMetrics(t *testing.T) {
	base := start(t, fast(), demo.WithFaults(demo.Faults{SlowRatio: 0.5, Slow: time.Millisecond}))
	c := newClient(t, base)
	c.login("ann")
	for range 3 {
		c.do("GET", "/api/projects/1/", "", "")
	}
	conn, _, err := c.dialChat()
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, base)
	conn.Close()
	for _, want := range []string{
		`http_requests_total{code="200",endpoint="GET /api/projects/{id}/",method="GET"} 3`,
		`http_requests_total{code="200",endpoint="POST /api/auth/login/",method="POST"} 1`,
		`http_request_duration_seconds_count{endpoint="GET /api/projects/{id}/",method="GET"} 3`,
		"websocket_connections 1",
		"demo_logins_total 1",
		// login, 3 details and the upgrade: 5 requests, every other one slow.
		`demo_faults_total{kind="slow"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(m)
	}
}

func TestOptionsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  demo.Option
		want string
	}{
		{"negative rate", demo.WithRateLimit(-1, 1), "rate limit -1/s with burst 1: want a rate of 0 (none) or more and a burst of 1 or more"},
		{"negative burst", demo.WithRateLimit(1, -1), "rate limit 1/s with burst -1"},
		{"negative scale", demo.WithLatencyScale(-2), "latency scale -2: want 0 or more"},
		{"unknown class", demo.WithLatency("nope", demo.Latency{}), `latency class "nope": want one of login, list`},
		{"p99 below median", demo.WithLatency(demo.ClassList, demo.Latency{Median: time.Second, P99: time.Millisecond}), `latency class "list": median 1s and P99 1ms`},
		{"ratio above 1", demo.WithFaults(demo.Faults{ErrorRatio: 1.5}), "error ratio 1.5: want a share in [0, 1]"},
		{"short secret", demo.WithSecret([]byte("short")), "secret: want at least 16 bytes"},
		{"process index", demo.WithProcess(3, 3, time.Now()), "process 3 of 3: want 0 <= index < count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := demo.New(tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// A burst of 0 is the rate's.
	if _, err := demo.New(demo.WithRateLimit(5, 0)); err != nil {
		t.Errorf("a burst of 0: %v", err)
	}
}

func TestParseLatency(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want demo.Latency
		ok   bool
	}{
		{"30ms", demo.Latency{Median: 30 * time.Millisecond, P99: 30 * time.Millisecond}, true},
		{"30ms:150ms", demo.Latency{Median: 30 * time.Millisecond, P99: 150 * time.Millisecond}, true},
		{"30ms:10ms", demo.Latency{}, false},
		{"fast", demo.Latency{}, false},
	} {
		got, err := demo.ParseLatency(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLatency(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestParseClassLatency(t *testing.T) {
	opt, err := demo.ParseClassLatency("list=30ms:150ms")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demo.New(opt); err != nil {
		t.Fatalf("the option: %v", err)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"no class", "30ms", "want CLASS=MEDIAN[:P99], such as list=30ms:150ms; classes: login, list"},
		{"unknown class", "nope=1ms", `"nope=1ms": want CLASS=MEDIAN[:P99]`},
		{"bad latency", "list=fast", `"fast"`},
	} {
		if _, err := demo.ParseClassLatency(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseClassLatency(%q) = %v, want an error saying %q", tc.name, tc.in, err, tc.want)
		}
	}
}
