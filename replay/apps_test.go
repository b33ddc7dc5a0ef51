package replay_test

import (
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/replay"
)

// usersFile makes a users file of one templated row: every user logs in as
// u<index> with the password the apps accept for it.
func usersFile(t *testing.T) *replay.Users {
	t.Helper()
	u, err := replay.LoadUsers(strings.NewReader("username,password\nu{{user.index}},pw-u{{user.index}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// failures fails t for each sample that failed, at most a few.
func failures(t *testing.T, sink *collect) {
	t.Helper()
	n := 0
	for _, s := range sink.samples {
		if s.Failed() {
			if n < 5 {
				t.Errorf("%s %s: status %d, error %q", kind(s.Kind), s.Endpoint, s.Status, s.Err)
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%d of %d requests failed", n, len(sink.samples))
	}
}

// TestDjangoStyleApp records three browser-like users of an app with a
// CSRF cookie, a form login, imports that make projects with small
// auto-increment ids and a missing favicon, with the capture's default
// redaction, and replays them as 50 users with a users file: the app counts
// a session per user, no 403, and no project read that is not the
// reader's; the favicon's 404s are as recorded.
func TestDjangoStyleApp(t *testing.T) {
	app := apptest.NewDjango(t)
	sessions, _ := apptest.Record(t, app.URL, func(base string) {
		for _, u := range []string{"alice", "bob", "carol"} {
			apptest.DjangoClient(t, base, u)
		}
	})
	if len(sessions) != 3 {
		t.Fatalf("recorded %d sessions, want 3", len(sessions))
	}
	app.Counts.Reset()
	const users = 50
	_, sink := run(t, app.URL, sessions, users, 2*time.Second, replay.WithUsers(usersFile(t)))
	c := &app.Counts
	if c.Get("sessions") < users || c.Get("403") > 0 || c.Get("404") > 0 || c.Get("project reads") < 2*users {
		t.Errorf("the app counted %s", c.String())
	}
	if c.Get("404 favicon") < users {
		t.Errorf("the app served %d favicons", c.Get("404 favicon"))
	}
	failures(t, sink)
	asRecorded := 0
	for _, s := range sink.samples {
		if s.AsRecorded() {
			asRecorded++
		}
	}
	if int64(asRecorded) != c.Get("404 favicon") {
		t.Errorf("%d answers as recorded, the app served %d missing favicons", asRecorded, c.Get("404 favicon"))
	}
}
