package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/internal/apptest"
)

// TestReplayNamesUnfilledSecrets records an app's logins with the default
// redaction and replays them: without a users file, replay says before the
// run which redacted values nothing fills (the password, in the login) and
// how to give them, and after it that the requests carrying them failed;
// with a users file of a password column it says nothing and the app
// counts its logins.
func TestReplayNamesUnfilledSecrets(t *testing.T) {
	app := apptest.NewDjango(t)
	_, trace := apptest.Record(t, app.URL, func(base string) { apptest.DjangoClient(t, base, "alice") })

	code, stdout, errOut := thrive(t, "replay", trace, "--target", app.URL, "--users", "2", "--run-time", "500ms")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"password: in 1 requests (POST /accounts/login/)", "--users-file", "--keep-secrets"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the warning before the run lacks %q:\n%s", want, errOut)
		}
	}
	for _, filled := range []string{"csrf", "sessionid"} { // the jar and the CSRF echo fill these
		if strings.Contains(errOut, filled) {
			t.Errorf("the warning names %s, which the jar fills:\n%s", filled, errOut)
		}
	}
	if !strings.Contains(stdout, "failed requests carried a redacted value that nothing filled (password)") {
		t.Errorf("no word after the run:\n%s", stdout)
	}
	if app.Counts.Get("400 login") == 0 {
		t.Errorf("the app refused no login: %s", app.Counts.String())
	}

	app.Counts.Reset()
	users := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(users, []byte("username,password\nbob,pw-bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, errOut = thrive(t, "replay", trace, "--target", app.URL, "--users", "2", "--run-time", "500ms", "--users-file", users)
	if code != exitOK || strings.Contains(errOut, "redacted") || strings.Contains(stdout, "redacted") {
		t.Fatalf("with a users file: exit %d\n%s\n%s", code, errOut, stdout)
	}
	if app.Counts.Get("sessions") == 0 || app.Counts.Get("400") > 0 || app.Counts.Get("403") > 0 {
		t.Errorf("the app counted %s", app.Counts.String())
	}
}

// TestFilesArePrivate: what thrive writes holds users' sessions (a trace,
// even redacted) or the target's URLs and figures (results): the capture's
// trace, a filtered trace, the result file, Locust's CSV files and the HTML
// report are readable by their owner only.
func TestFilesArePrivate(t *testing.T) {
	app := apptest.NewDjango(t)
	_, trace := apptest.Record(t, app.URL, func(base string) { apptest.DjangoClient(t, base, "alice") })
	dir := t.TempDir()
	filtered := filepath.Join(dir, "filtered.thrv")
	if code, _, errOut := thrive(t, "traces", "filter", trace, "--out", filtered); code != exitOK {
		t.Fatalf("filter: exit %d: %s", code, errOut)
	}
	res, html, csv := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html"), filepath.Join(dir, "r")
	if code, _, errOut := thrive(t, "replay", filtered, "--target", app.URL, "--users", "1", "--run-time", "300ms",
		"--out", res, "--html", html, "--csv", csv); code != exitOK {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	csvs, _ := filepath.Glob(csv + "_*.csv")
	if len(csvs) != 4 {
		t.Fatalf("CSV files: %v", csvs)
	}
	for _, p := range append([]string{trace, filtered, res, html}, csvs...) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", p, fi.Mode().Perm())
		}
	}
}
