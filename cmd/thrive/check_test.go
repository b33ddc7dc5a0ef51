package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/internal/apptest"
)

// TestCheckFindsAnUncorrelatedValue records an app whose import answers
// the new project's small id under a name correlation does not take for an
// id ("project": 201), and checks the trace against it: --check names the
// endpoint that now answers 404, the value it sent back unchanged and where
// that came from, suggests the rule, and exits 1; with the suggested rule it
// finds nothing and exits 0. Against a target that is down, and for a
// profile the trace lacks, it says so and exits 1.
func TestCheckFindsAnUncorrelatedValue(t *testing.T) {
	app := apptest.NewDjango(t)
	app.IDField = "project"
	_, trace := apptest.Record(t, app.URL, func(base string) { apptest.DjangoClient(t, base, "alice") })
	dir := t.TempDir()
	users := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(users, []byte("username,password\nbob,pw-bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "check.json")
	code, stdout, errOut := thrive(t, "replay", trace, "--target", app.URL, "--check", "--users-file", users, "--out", report)
	if code != exitError {
		t.Fatalf("exit %d, want %d: %s\n%s", code, exitError, errOut, stdout)
	}
	for _, want := range []string{
		"check: 1 session played once",
		"GET /api/projects/{id}/: answered 404 where the recording had 200, 2 of 2 [regression]",
		"cause: it sent 201, which came from POST /api/import/ $.project and was sent back unchanged",
		`- from: "POST /api/import/"`, `json: "$.project"`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the check lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "favicon") {
		t.Errorf("the favicon's 404 was a 404 when recorded, not a divergence:\n%s", stdout)
	}
	if b, err := os.ReadFile(report); err != nil || !strings.Contains(string(b), `"regressions": 2`) {
		t.Errorf("check.json: %v\n%s", err, b)
	}
	if got := app.Counts.Get("404 project"); got != 2 {
		t.Errorf("the app answered %d project 404s, want the 2 the check names", got)
	}

	// Without the users file the login fails first, and is named first;
	// what fails after it says so.
	code, stdout, _ = thrive(t, "replay", trace, "--target", app.URL, "--check")
	login := strings.Index(stdout, "POST /accounts/login/: answered 400 where the recording had 302, 1 of 1 [regression]\n  cause: it sends the redacted password, which nothing fills")
	after := strings.Index(stdout, "cause: an earlier request of the session failed first: POST /accounts/login/")
	if code != exitError || login < 0 || after < login {
		t.Errorf("without a users file: exit %d\n%s", code, stdout)
	}

	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte("add:\n  - from: \"POST /api/import/\"\n    json: \"$.project\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, errOut = thrive(t, "replay", trace, "--target", app.URL, "--check", "--users-file", users, "--correlation-rules", rules)
	if code != exitOK || !strings.Contains(stdout, "every answer is as recorded") {
		t.Fatalf("with the rule: exit %d: %s\n%s", code, errOut, stdout)
	}

	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	if code, _, errOut := thrive(t, "replay", trace, "--target", down, "--check"); code != exitError || !strings.Contains(errOut, "no request to "+down+" got an answer") {
		t.Errorf("target down: exit %d: %s", code, errOut)
	}
	if code, _, errOut := thrive(t, "replay", trace, "--target", app.URL, "--check", "--profiles", "chat"); code != exitError || !strings.Contains(errOut, `no session of profile "chat"`) {
		t.Errorf("missing profile: exit %d: %s", code, errOut)
	}
}
