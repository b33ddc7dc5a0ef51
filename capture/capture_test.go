package capture_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/demo/demotest"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
)

// loginName returns the user a session logged in as, from its login body.
func loginName(s *traces.Session) string {
	for _, ex := range s.Exchanges {
		if ex.Method == "POST" && strings.HasPrefix(ex.URL, "/api/auth/login/") {
			var in struct {
				Username string `json:"username"`
			}
			if json.Unmarshal(ex.ReqBody.Data, &in) == nil {
				return in.Username
			}
		}
	}
	return ""
}

// TestDriverThroughProxy plays the demo driver through the capture and checks
// every session of the trace against what the driver did.
func TestDriverThroughProxy(t *testing.T) {
	backend := demotest.Serve(t, demo.WithLatencyScale(0), demo.WithRateLimit(0, 1))
	p := startProxy(t, backend)
	d := demo.Driver{Base: p.URL, Sessions: 60, Concurrency: 12, TimeScale: 1e6, Seed: 5}
	st, err := d.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Failures != 0 {
		t.Fatalf("driver failures through the proxy: %d %v", st.Failures, st.Errors)
	}
	sessions := p.stop()
	if len(sessions) != d.Sessions {
		t.Fatalf("%d sessions in the trace, the driver played %d", len(sessions), d.Sessions)
	}
	seen := map[string]bool{}
	agree := 0
	for _, s := range sessions {
		user := loginName(s)
		want, ok := st.Users[user]
		if !ok || seen[user] {
			t.Fatalf("session %s logged in as %q: unknown or twice", s.ID, user)
		}
		seen[user] = true
		// What the default rules should make of what the driver did: a
		// session that never did what marks its profile (an import user
		// who only viewed projects) looks like browsing.
		expect := "browse"
		switch {
		case want.ChatMessages > 0:
			expect = "chat"
		case want.Imports > 0:
			expect = "import"
		case 2*want.Endpoints["POST /api/chat/"] >= want.Requests:
			expect = "chat"
		}
		if s.Profile != expect {
			t.Errorf("%s: profile %q, want %q (the driver played %s: %+v)", user, s.Profile, expect, want.Profile, want)
		}
		if s.Profile == want.Profile {
			agree++
		}
		if len(s.Exchanges) != want.Requests {
			t.Errorf("%s: %d exchanges, the driver made %d requests", user, len(s.Exchanges), want.Requests)
		}
		var sent, received int
		for i, ex := range s.Exchanges {
			if i > 0 && ex.Offset < s.Exchanges[i-1].Offset {
				t.Fatalf("%s: exchanges out of order", user)
			}
			if ex.Duration < ex.TTFB || ex.Status == 0 {
				t.Fatalf("%s: exchange %d has duration %v, ttfb %v, status %d", user, i, ex.Duration, ex.TTFB, ex.Status)
			}
			if ws := ex.WebSocket; ws != nil {
				for _, f := range ws.Frames {
					if f.FromClient {
						sent++
					} else {
						received++
					}
				}
				if !ws.Close.ByClient || ws.Close.Code != 1000 {
					t.Errorf("%s: close %+v, the driver closes normally", user, ws.Close)
				}
			}
		}
		if sent != want.ChatMessages || received != want.ChatTokens+want.ChatMessages {
			t.Errorf("%s: frames %d sent, %d received; the driver sent %d messages and got %d tokens and %d dones",
				user, sent, received, want.ChatMessages, want.ChatTokens, want.ChatMessages)
		}
	}
	if agree < len(sessions)*9/10 {
		t.Errorf("only %d of %d sessions got the profile the driver played", agree, len(sessions))
	}
	stats := p.cp.Stats()
	if stats.Sessions != int64(d.Sessions) || stats.DroppedExchanges != 0 || stats.DroppedSessions != 0 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestRedaction(t *testing.T) {
	backend := demotest.Serve(t, demo.WithLatencyScale(0))
	for _, tc := range []struct {
		name   string
		opts   []capture.Option
		secret bool // whether the secrets appear as they were
	}{
		{"redacted by default", nil, false},
		{"kept on request", []capture.Option{capture.WithKeepSecrets()}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, backend, tc.opts...)
			d := demo.Driver{Base: p.URL, Sessions: 4, TimeScale: 1e6, Seed: 1}
			if _, err := d.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			sessions := p.stop()
			js, _ := json.Marshal(sessions)
			all := string(js)
			if got := strings.Contains(all, demo.Password("user0")); got != tc.secret {
				t.Errorf("password in the trace: %v, want %v", got, tc.secret)
			}
			if got := strings.Contains(all, "sessionid={{sessionid:"); got == tc.secret {
				t.Errorf("session cookie placeholder in the trace: %v, want %v", got, !tc.secret)
			}
			for _, s := range sessions {
				if strings.Contains(s.Client, "{{") == tc.secret {
					t.Errorf("client key %q", s.Client)
				}
			}
			meta := tracetest.ReadMeta(t, p.path)
			if (len(meta.Redacted) == 0) != tc.secret {
				t.Errorf("header lists redactions %v", meta.Redacted)
			}
		})
	}
}
