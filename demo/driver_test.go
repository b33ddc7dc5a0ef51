package demo_test

import (
	"context"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/demo"
)

func TestDriverPlaysTheProfileMix(t *testing.T) {
	base := start(t, fast(), demo.WithRateLimit(0, 1))
	const n = 300
	d := demo.Driver{Base: base, Sessions: n, Concurrency: 16, TimeScale: 1e6, Seed: 7}
	st, err := d.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Sessions != n || st.Failures != 0 || len(st.Errors) != 0 {
		t.Fatalf("sessions %d, failures %d, errors %v", st.Sessions, st.Failures, st.Errors)
	}
	// Each profile's count is binomial; allow four standard deviations.
	for _, p := range demo.Profiles() {
		share := float64(p.Weight) / 100
		sd := math.Sqrt(n * share * (1 - share))
		if got := float64(st.Profiles[p.Name]); math.Abs(got-n*share) > 4*sd {
			t.Errorf("%s: %v sessions of %d, want %v ± %.0f", p.Name, got, n, n*share, 4*sd)
		}
	}
	if st.Profiles["browse"]+st.Profiles["chat"]+st.Profiles["import"] != n {
		t.Fatalf("profiles %v do not add up to %d", st.Profiles, n)
	}
	// Every session logged in, and the backend saw each login as a session.
	if st.Endpoints["POST /api/auth/login/"] != n {
		t.Fatalf("%d logins, want %d", st.Endpoints["POST /api/auth/login/"], n)
	}
	m := regexp.MustCompile(`demo_logins_total (\d+)`).FindStringSubmatch(scrape(t, base))
	if m == nil || m[1] != strconv.Itoa(n) {
		t.Fatalf("backend counted logins %v, want %d", m, n)
	}
	if st.ChatMessages == 0 || st.ChatTokens < 5*st.ChatMessages {
		t.Fatalf("chat: %d messages, %d tokens", st.ChatMessages, st.ChatTokens)
	}
	if st.Imports == 0 || st.ImportsDone != st.Imports {
		t.Fatalf("imports: %d started, %d done", st.Imports, st.ImportsDone)
	}
	// Task weights show in the endpoint counts: browse lists projects more
	// than it searches.
	if st.Endpoints["GET /api/projects/"] <= st.Endpoints["GET /api/search/"] {
		t.Fatalf("endpoint counts %v", st.Endpoints)
	}
}

func TestDriverIsRepeatable(t *testing.T) {
	base := start(t, fast(), demo.WithRateLimit(0, 1))
	run := func(conc int) demo.DriveStats {
		d := demo.Driver{Base: base, Sessions: 40, Concurrency: conc, TimeScale: 1e6, Seed: 3}
		st, err := d.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	a, b := run(1), run(8)
	if a.Requests != b.Requests || a.ChatMessages != b.ChatMessages || a.Imports != b.Imports {
		t.Fatalf("same seed, different runs: %d/%d/%d vs %d/%d/%d requests/messages/imports",
			a.Requests, a.ChatMessages, a.Imports, b.Requests, b.ChatMessages, b.Imports)
	}
	for k, v := range a.Profiles {
		if b.Profiles[k] != v {
			t.Fatalf("profiles %v vs %v", a.Profiles, b.Profiles)
		}
	}
}

func TestDriverCountsRefusedConnections(t *testing.T) {
	ln, err := demo.Listen(context.Background(), "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	d := demo.Driver{Base: base, Sessions: 3, TimeScale: 1e6}
	st, err := d.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Failures != 3 || st.Errors["POST /api/auth/login/: connection refused"] != 3 {
		t.Fatalf("failures %d, errors %v", st.Failures, st.Errors)
	}
}

func TestDriverValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    demo.Driver
		want string
	}{
		{"no scheme", demo.Driver{Base: "127.0.0.1:8000"}, `base "127.0.0.1:8000": want an http or https URL`},
		{"ftp", demo.Driver{Base: "ftp://x"}, `base "ftp://x": want an http or https URL`},
		{"negative sessions", demo.Driver{Base: "http://127.0.0.1", Sessions: -1}, "sessions -1: want 0 or more"},
		{"negative time scale", demo.Driver{Base: "http://127.0.0.1", TimeScale: -1}, "time scale -1: want 0 (default) or more"},
	} {
		if err := tc.d.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
