package capture

import (
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

func sessionOf(exs ...traces.Exchange) *traces.Session {
	return &traces.Session{ID: "s", Exchanges: exs}
}

func get(url string) traces.Exchange  { return traces.Exchange{Method: "GET", URL: url, Status: 200} }
func post(url string) traces.Exchange { return traces.Exchange{Method: "POST", URL: url, Status: 200} }
func ws(url string) traces.Exchange {
	return traces.Exchange{Method: "GET", URL: url, Status: 101, WebSocket: &traces.WebSocket{}}
}

func TestDefaultRules(t *testing.T) {
	rs := DefaultRules()
	if err := rs.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    *traces.Session
		want string
	}{
		{"websocket", sessionOf(post("/api/auth/login/"), ws("/ws/chat/"), get("/api/projects/")), "chat"},
		{"import post", sessionOf(post("/api/auth/login/"), post("/api/import/github/"), get("/api/import/jobs/9/")), "import"},
		{"import get only", sessionOf(get("/api/import/jobs/9/"), get("/api/projects/1/")), "browse"},
		{"mostly chat calls", sessionOf(post("/api/chat/"), post("/api/chat/"), get("/api/tools/")), "chat"},
		{"browse with a chat call", sessionOf(post("/api/auth/login/"), get("/api/projects/"), get("/api/tools/"), post("/api/chat/")), "browse"},
		{"absolute URL", sessionOf(post("http://h:8000/v2/import/x?y=1")), "import"},
		{"empty", sessionOf(), "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rs.Profile(tc.s); got != tc.want {
				t.Fatalf("profile %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseRules(t *testing.T) {
	rs, err := ParseRules(strings.NewReader(`
rules:
  - profile: admin
    path: /admin/**
  - profile: uploader
    method: put
  - profile: streamer
    websocket: true
    min_share: 0.2
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    *traces.Session
		want string
	}{
		{sessionOf(get("/x"), get("/admin/users/")), "admin"},
		{sessionOf(traces.Exchange{Method: "PUT", URL: "/f"}), "uploader"},
		{sessionOf(ws("/s"), get("/a"), get("/b"), get("/c")), "streamer"},
		{sessionOf(ws("/s"), get("/a"), get("/b"), get("/c"), get("/d"), get("/e")), "other"},
	} {
		if got := rs.Profile(tc.s); got != tc.want {
			t.Errorf("profile %q, want %q", got, tc.want)
		}
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"no profile", "rules:\n  - method: GET\n", "rule 1: no profile"},
		{"relative path", "rules:\n  - profile: x\n    path: nope\n", `rule 1 (x): path pattern "nope": want a path beginning with /`},
		{"bad pattern", "rules:\n  - profile: x\n    path: /[\n", `rule 1 (x): path pattern "/[": segment "[": syntax error in pattern`},
		{"share above 1", "rules:\n  - profile: x\n    min_share: 2\n", "rule 1 (x): min_share 2 not in [0, 1]"},
		{"unknown field", "rules:\n  - profile: x\n    colour: red\n", "line 3: field colour not found"},
		{"not YAML", "rules: [", "yaml: line 1"},
	} {
		if _, err := ParseRules(strings.NewReader(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestRulesYAMLRoundTrips(t *testing.T) {
	y, err := DefaultRules().YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseRules(strings.NewReader(string(y)))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	again, _ := back.YAML()
	if string(again) != string(y) {
		t.Fatalf("rules changed:\n%s\n%s", y, again)
	}
}
