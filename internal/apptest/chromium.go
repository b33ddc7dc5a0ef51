package apptest

import (
	"os"
	"os/exec"
	"testing"
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
