package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
)

var forwardRE = regexp.MustCompile(`capturing as a forward proxy at http://(\S+) `)

// TestBrowserThroughForwardProxyThenReplay is the design card's two
// commands as written: a headless Chromium pointed at `thrive capture`
// with no target (its CA trusted through an NSS database made here)
// records sessions of an app and its API on two HTTPS hosts with a test
// CA of their own, wss:// chat included; then `thrive replay` with no
// file and no target, from that directory, replays them against the same
// hosts. The API's own counts say every replayed session logged in, read
// its items and had its messages answered, with no 401, 403 or 404.
func TestBrowserThroughForwardProxyThenReplay(t *testing.T) {
	apptest.Chromium(t)
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		if os.Getenv("THRIVE_REQUIRE_CHROMIUM") != "" {
			t.Fatal("certutil (libnss3-tools) is not installed, and THRIVE_REQUIRE_CHROMIUM is set")
		}
		t.Skip("certutil (libnss3-tools) is not installed")
	}
	site := apptest.NewCrossSite(t)
	dir := t.TempDir()
	// The capture's CA is made on first use under XDG_CONFIG_HOME; the
	// origins are verified against "the system roots", here their test CA.
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("SSL_CERT_FILE", site.CAFile)

	code, pem, stderr := thrive(t, "capture", "--print-ca")
	if code != 0 || !strings.HasPrefix(pem, "-----BEGIN CERTIFICATE-----") || !strings.Contains(stderr, "certutil") {
		t.Fatalf("--print-ca: %d\n%s\n%s", code, pem, stderr)
	}
	home := filepath.Join(dir, "home")
	nssdb := filepath.Join(home, ".pki", "nssdb")
	caFile := filepath.Join(dir, "thrive-ca.pem")
	if err := os.MkdirAll(nssdb, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-d", "sql:" + nssdb, "-N", "--empty-password"},
		{"-d", "sql:" + nssdb, "-A", "-t", "C,,", "-n", "thrive capture", "-i", caFile},
	} {
		if out, err := exec.CommandContext(context.Background(), certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}

	// thrive capture --listen ADDR: no target. Only the two hosts are in
	// scope, so whatever else the browser asks for is tunnelled, never
	// recorded nor replayed.
	capture, stdout := thriveProcessIn(t, dir, "capture", "--listen", "127.0.0.1:0", "--keep-secrets", "--host", "localhost", "--host", "127.0.0.2")
	line, err := stdout.ReadString('\n')
	m := forwardRE.FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("capture said %q, %v", line, err)
	}
	b := apptest.StartBrowserWith(t, home, "--proxy-server=http://"+m[1], "--proxy-bypass-list=<-loopback>")
	const sessions = 3
	for range sessions {
		if got, err := b.Open(site.AppURL+"/").WaitText("done", 60*time.Second); err != nil || got != "ok" {
			t.Fatalf("the page said %q, %v; the API counted %s", got, err, site.Counts.String())
		}
	}
	if err := capture.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	if err := capture.Wait(); capture.ProcessState.ExitCode() != 130 {
		t.Fatalf("capture: %v\n%s", err, rest)
	}
	if !regexp.MustCompile(`hosts +2 +`).Match(rest) || !strings.Contains(string(rest), site.AppURL+" ") || !strings.Contains(string(rest), site.APIURL+" ") {
		t.Errorf("the capture's summary does not name both hosts:\n%s", rest)
	}
	if site.Counts.Get("logins") != sessions || site.Counts.Get("messages answered") != 2*sessions || site.Counts.Get("401") != 0 {
		t.Fatalf("recording: the API counted %s", site.Counts.String())
	}

	// The trace: sessions across both hosts, each exchange with its scheme
	// and host, the chat's frames.
	ss := readTrace(t, filepath.Join(dir, "capture.thrv"))
	across, frames := 0, 0
	for _, s := range ss {
		hosts := map[string]bool{}
		for _, ex := range s.Exchanges {
			switch {
			case strings.HasPrefix(ex.URL, site.AppURL+"/"):
				hosts["app"] = true
			case strings.HasPrefix(ex.URL, site.APIURL+"/"):
				hosts["api"] = true
			default:
				t.Errorf("recorded %s %s: not of the two hosts", ex.Method, ex.URL)
			}
			if ex.WebSocket != nil {
				frames += len(ex.WebSocket.Frames)
			}
		}
		if hosts["app"] && hosts["api"] {
			across++
		}
	}
	if across < sessions || frames < 4*sessions {
		t.Fatalf("%d sessions across both hosts (want %d), %d frames; the trace has %d sessions", across, sessions, frames, len(ss))
	}

	// thrive replay with no file and no target, from that directory.
	site.Counts.Reset()
	res := filepath.Join(dir, "result.json")
	replay, out := thriveProcessIn(t, dir, "replay", "--users", "4", "--run-time", "3s", "--scale-time", "1", "--out", res, "-q")
	text, _ := io.ReadAll(out)
	if err := replay.Wait(); err != nil {
		t.Fatalf("replay: %v\n%s", err, text)
	}
	if !strings.Contains(string(text), "the load goes to ") || !strings.Contains(string(text), site.AppURL) || !strings.Contains(string(text), site.APIURL) {
		t.Errorf("replay did not say where the load goes:\n%s", text)
	}
	r := readResult(t, res)
	if r.Requests == 0 || r.Failures != 0 {
		t.Errorf("replay: %d requests, %d failures\n%s", r.Requests, r.Failures, text)
	}
	c := &site.Counts
	if c.Get("logins") == 0 || c.Get("items") == 0 || c.Get("item") == 0 || c.Get("messages answered") == 0 || c.Get("preflights") == 0 {
		t.Errorf("replay: the API counted %s", c.String())
	}
	if n := c.Prefix("401") + c.Prefix("403") + c.Prefix("400") + c.Prefix("404 /api"); n != 0 {
		t.Errorf("replay: %d refusals; the API counted %s", n, c.String())
	}
}

// thriveProcessIn runs thrive as a child process in dir and returns it
// with its stdout.
func thriveProcessIn(t *testing.T, dir string, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd, out, _ := thriveProcessAt(t, dir, false, args...)
	return cmd, out
}

// TestReplayDefaults: without a file replay takes capture.thrv, and
// without one says how to make one; a forward proxy's flags with --target
// are refused.
func TestReplayDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	code, _, stderr := thrive(t, "replay", "--users=10000", "--scale-time")
	if code != exitUsage || !strings.Contains(stderr, "no capture.thrv here") || !strings.Contains(stderr, "thrive capture --listen :9000") {
		t.Errorf("no trace: exit %d, %q", code, stderr)
	}
	path, _ := sampleTrace(t, 3) // a trace with no target in its header
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("capture.thrv", data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = thrive(t, "replay", "--users=10000", "--scale-time")
	if code != exitUsage || !strings.Contains(stderr, "replaying capture.thrv") || !strings.Contains(stderr, "no target: the trace does not say") || !strings.Contains(stderr, "hint: give one with --target") {
		t.Errorf("a trace without a target: exit %d, %q", code, stderr)
	}
	for _, args := range [][]string{
		{"capture", "--target", "http://127.0.0.1:1", "--host", "a.test"},
		{"capture", "--target", "http://127.0.0.1:1", "--proxy-auth", "a:b"},
		{"capture", "--proxy-auth", "nocolon", "--listen", "127.0.0.1:0"},
		{"capture", "--ca-cert", "x.pem", "--listen", "127.0.0.1:0"},
		{"replay", "capture.thrv", "--target", "http://127.0.0.1:1", "--map", "a.test=http://127.0.0.1:2"},
	} {
		if code, _, stderr := thrive(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, %q; want %d", args, code, stderr, exitUsage)
		}
	}
}
