package apptest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Chromium returns the path of Debian's headless Chromium. Without it, the
// test fails when THRIVE_REQUIRE_CHROMIUM is set (as .ci/run sets it, having
// installed it), and is skipped otherwise.
func Chromium(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("THRIVE_REQUIRE_CHROMIUM") != "" {
			tb.Fatal("chromium is not installed, and THRIVE_REQUIRE_CHROMIUM is set")
		}
		tb.Skip("chromium is not installed")
	}
	return path
}

// Browse opens url in a new headless Chromium of its own profile (a browser
// context of its own, sharing nothing with another), lets the page's
// scripts run for up to budget of virtual time, and returns the page's
// DOM as the scripts left it.
func Browse(tb testing.TB, chromium, url string, budget time.Duration) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	profile, err := os.MkdirTemp(tb.TempDir(), "profile")
	if err != nil {
		tb.Fatal(err)
	}
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir=" + filepath.Clean(profile), "--virtual-time-budget=" + strconv.FormatInt(budget.Milliseconds(), 10), "--dump-dom", url}
	out, err := exec.CommandContext(ctx, chromium, args...).Output()
	if err != nil {
		tb.Fatalf("chromium %s: %v", url, err)
	}
	return string(out)
}
