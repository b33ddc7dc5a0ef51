package replay

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

func sessionTo(urls ...string) *traces.Session {
	s := &traces.Session{ID: "s", Profile: "browse", Start: time.Unix(1, 0)}
	for i, u := range urls {
		s.Exchanges = append(s.Exchanges, traces.Exchange{Offset: time.Duration(i) * time.Millisecond, Method: "GET", URL: u, Status: 200})
	}
	return s
}

// TestRoutes: where a run's requests go, of the flags and the trace.
func TestRoutes(t *testing.T) {
	forward := FromSessions([]*traces.Session{sessionTo(
		"https://api.shop.test/a", "https://api.shop.test/b", "https://api.shop.test/c",
		"https://shop.test/", "http://127.0.0.1:8080/x?y=1",
	)})
	reverse := FromSessions([]*traces.Session{sessionTo("/a", "/b")})
	reverse.meta.Target = "http://127.0.0.1:8000"
	bare := FromSessions([]*traces.Session{sessionTo("/a")})
	cases := []struct {
		name      string
		lib       *Library
		target    string
		maps      []string
		want      Routes
		remote    []string
		wantError string
	}{
		{name: "forward, as recorded", lib: forward, want: Routes{
			Target:    "https://api.shop.test",
			Origins:   [][2]string{{"https://shop.test", "https://shop.test"}, {"http://127.0.0.1:8080", "http://127.0.0.1:8080"}},
			FromTrace: []string{"https://api.shop.test", "https://shop.test", "http://127.0.0.1:8080"},
		}, remote: []string{"https://api.shop.test", "https://shop.test"}},
		{name: "forward, --target and --map by host, authority and origin", lib: forward, target: "http://127.0.0.1:9001",
			maps: []string{"shop.test=http://127.0.0.1:9002", "127.0.0.1:8080=http://127.0.0.1:9003"}, want: Routes{
				Target:  "http://127.0.0.1:9001",
				Origins: [][2]string{{"https://shop.test", "http://127.0.0.1:9002"}, {"http://127.0.0.1:8080", "http://127.0.0.1:9003"}},
			}},
		{name: "forward, --map of the main host", lib: forward, maps: []string{"https://api.shop.test=http://127.0.0.1:9001"}, want: Routes{
			Target:    "http://127.0.0.1:9001",
			Origins:   [][2]string{{"https://shop.test", "https://shop.test"}, {"http://127.0.0.1:8080", "http://127.0.0.1:8080"}},
			FromTrace: []string{"https://shop.test", "http://127.0.0.1:8080"},
		}, remote: []string{"https://shop.test"}},
		{name: "reverse, as recorded", lib: reverse, want: Routes{Target: "http://127.0.0.1:8000", FromTrace: []string{"http://127.0.0.1:8000"}}},
		{name: "reverse, --target", lib: reverse, target: "http://127.0.0.1:9", want: Routes{Target: "http://127.0.0.1:9"}},
		{name: "no target anywhere", lib: bare, wantError: ErrNoTarget.Error()},
		{name: "--map of a host never recorded", lib: forward, maps: []string{"other.test=http://127.0.0.1:1"}, wantError: `map "other.test=http://127.0.0.1:1": the trace has no request to other.test (it has https://api.shop.test, https://shop.test, http://127.0.0.1:8080)`},
		{name: "--map without =", lib: forward, maps: []string{"shop.test"}, wantError: `map "shop.test": want HOST=URL`},
		{name: "--map on a reverse trace", lib: reverse, maps: []string{"x=http://127.0.0.1:1"}, wantError: `map "x=http://127.0.0.1:1": the trace has no request to x (it has no host named: a reverse proxy's trace)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.lib.Routes(tc.target, tc.maps)
			if tc.wantError != "" {
				if err == nil || err.Error() != tc.wantError {
					t.Fatalf("error %v, want %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Target != tc.want.Target || !slices.Equal(r.Origins, tc.want.Origins) || !slices.Equal(r.FromTrace, tc.want.FromTrace) {
				t.Errorf("routes %+v, want %+v", r, tc.want)
			}
			if got := r.Remote(); !slices.Equal(got, tc.remote) {
				t.Errorf("remote %q, want %q", got, tc.remote)
			}
			if _, err := New(r.Target, tc.lib, r.Options()...); err != nil {
				t.Errorf("an engine of these routes: %v", err)
			}
		})
	}
	if _, err := New("http://127.0.0.1:1", forward, WithOrigin("https://never.test", "http://127.0.0.1:2")); err == nil || !strings.Contains(err.Error(), "origin https://never.test: no request of the trace went to it") {
		t.Errorf("an origin never recorded: %v", err)
	}
}
