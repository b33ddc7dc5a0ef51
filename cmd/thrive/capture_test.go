package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
	"golang.org/x/sys/unix"
)

// thriveProcess runs thrive as a child process (the test binary standing in,
// see TestMain) and returns it with its stdout.
func thriveProcess(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd, out, _ := thriveProcessPiped(t, false, args...)
	return cmd, out
}

// thriveProcessPiped is thriveProcess with the process's stderr piped back
// when pipeErr is set (else it goes to the test's).
func thriveProcessPiped(t *testing.T, pipeErr bool, args ...string) (*exec.Cmd, *bufio.Reader, io.Reader) {
	t.Helper()
	return thriveProcessAt(t, "", pipeErr, args...)
}

// thriveProcessAt is thriveProcessPiped in the directory dir ("" for the
// test's own).
func thriveProcessAt(t *testing.T, dir string, pipeErr bool, args ...string) (*exec.Cmd, *bufio.Reader, io.Reader) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), thriveBin(), args...)
	cmd.Dir = dir
	var stderr io.Reader
	if pipeErr {
		var err error
		if stderr, err = cmd.StderrPipe(); err != nil {
			t.Fatal(err)
		}
	} else {
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(out), stderr
}

var capturingRE = regexp.MustCompile(`capturing (https?://\S+) `)

// startCaptureProcess runs `thrive capture` in front of target and returns
// the process, its proxy URL and its stdout.
func startCaptureProcess(t *testing.T, target, out string, args ...string) (*exec.Cmd, string, *bufio.Reader) {
	t.Helper()
	cmd, stdout := thriveProcess(t, append([]string{"capture", "--listen", "127.0.0.1:0", "--target", target, "--out", out}, args...)...)
	line, err := stdout.ReadString('\n')
	m := capturingRE.FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("capture said %q, %v", line, err)
	}
	return cmd, m[1], stdout
}

// TestCaptureSIGTERMLosesNothing stops a capture with SIGTERM (and with
// SIGHUP, as a closed terminal sends it) while its sessions are open (the
// idle time is an hour), finds every exchange in the trace, and the exit
// code the README gives: 143, 129.
func TestCaptureSIGTERMLosesNothing(t *testing.T) {
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	for _, tc := range []struct {
		relay []string
		sig   syscall.Signal
	}{{nil, syscall.SIGTERM}, {[]string{"--event-loop"}, syscall.SIGTERM}, {nil, syscall.SIGHUP}} {
		relay := tc.relay
		t.Run(strings.Join(append([]string{"relay", unix.SignalName(tc.sig)}, relay...), " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "c.thrv")
			cmd, url, stdout := startCaptureProcess(t, backend, out, append([]string{"--session-idle", "1h"}, relay...)...)
			d := demo.Driver{Base: url, Sessions: 20, Concurrency: 5, TimeScale: 1e6, Seed: 2}
			st, err := d.Run(context.Background())
			if err != nil || st.Failures != 0 {
				t.Fatalf("driver: %v, %d failures", err, st.Failures)
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(stdout)
			if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 128+int(tc.sig) {
				t.Fatalf("capture exited with %v:\n%s", err, rest)
			}
			if !strings.Contains(string(rest), "captured 20 sessions") {
				t.Fatalf("summary:\n%s", rest)
			}
			exchanges := 0
			for _, s := range readTrace(t, out) {
				exchanges += len(s.Exchanges)
			}
			if exchanges != st.Requests {
				t.Fatalf("%d exchanges in the trace, the driver made %d requests", exchanges, st.Requests)
			}
			if _, err := os.Stat(out + capture.JournalSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a clean stop left the journal: %v", err)
			}
		})
	}
}

// TestCaptureKill9KeepsFinishedSessions kills a capture without warning
// once its finished sessions have been flushed (every second) and reads them
// back intact.
func TestCaptureKill9KeepsFinishedSessions(t *testing.T) {
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	out := filepath.Join(t.TempDir(), "c.thrv")
	cmd, url, _ := startCaptureProcess(t, backend, out, "--session-idle", "300ms") // idle time long beside the driver's gaps even on a loaded machine
	d := demo.Driver{Base: url, Sessions: 10, Concurrency: 5, TimeScale: 1e6, Seed: 3}
	if _, err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The sessions end at the next sweep and reach the file with the flush
	// after it: poll the file, bounded.
	deadline := time.Now().Add(15 * time.Second)
	n := 0
	for n < 10 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling a file another process writes
		n = countSessions(out)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n != 10 {
		t.Fatalf("%d sessions readable before kill -9, want 10", n)
	}
	// After the kill the file reads whole to its last block, and says that
	// its writer did not finish it.
	code, stdout, errOut := thrive(t, "traces", "inspect", out)
	if code != exitError || !strings.Contains(stdout, "sessions    10") || !strings.Contains(errOut, "without its end record") {
		t.Fatalf("inspect after kill -9: exit %d\n%s\n%s", code, stdout, errOut)
	}
	// And it replays, saying what it lacks.
	code, _, errOut = thrive(t, "replay", out, "--target", backend, "--users", "2", "--run-time", "300ms", "--scale-time")
	if code != exitOK || !strings.Contains(errOut, "without its end record: its writer did not finish (still writing, or stopped); replaying the 10 sessions") {
		t.Fatalf("replay after kill -9: exit %d\n%s", code, errOut)
	}
}

// countSessions counts the sessions readable in a trace another process is
// writing, stopping quietly at its unfinished end.
func countSessions(path string) int {
	t, err := traces.Open(path)
	if err != nil {
		return 0
	}
	defer t.Close()
	n := 0
	for _, err := range t.Sessions() {
		if err != nil {
			break
		}
		n++
	}
	return n
}

func TestCapturePrintRules(t *testing.T) {
	code, out, _ := thrive(t, "capture", "--print-rules")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	rules, err := capture.ParseRules(strings.NewReader(out))
	if err != nil {
		t.Fatalf("printed rules do not parse: %v\n%s", err, out)
	}
	if len(rules.Rules) != len(capture.DefaultRules().Rules) {
		t.Fatalf("%d rules", len(rules.Rules))
	}
}

func TestCaptureBadFlags(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // where a forward proxy's CA is made
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"capture", "--host", "a b", "--listen", "127.0.0.1:0"}, "want a name"},
		{[]string{"capture", "--target", "http://127.0.0.1:1", "--host", "a.test"}, "for a forward proxy"},
		{[]string{"capture", "--target", "ftp://x"}, "want an http or https URL"},
		{[]string{"capture", "--target", "http://127.0.0.1:1", "--max-body", "lots"}, "--max-body"},
		{[]string{"capture", "--target", "http://127.0.0.1:1", "--rotate", "often"}, "--rotate"},
		{[]string{"capture", "--target", "http://127.0.0.1:1", "--tls-cert", "x.pem"}, "go together"},
	} {
		code, _, errOut := thrive(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errOut)
		}
	}
}

func TestCaptureUnwritableTrace(t *testing.T) {
	code, _, errOut := thrive(t, "capture", "--target", "http://127.0.0.1:1", "--out", "/dev/full", "--listen", "127.0.0.1:0")
	if code != exitError || !strings.Contains(errOut, "write at byte 0") || !strings.Contains(errOut, "no space left on device") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestCaptureListensOnTLSAndRotates(t *testing.T) {
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	cert, key := selfSigned(t)
	dir := t.TempDir()
	cmd, url, stdout := startCaptureProcess(t, backend, filepath.Join(dir, "c.thrv"),
		"--tls-cert", cert, "--tls-key", key, "--rotate", "1KB", "--session-idle", "1ms")
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("url %s", url)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a test certificate
	for i := range 6 {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", url+"/api/projects/"+string(rune('1'+i))+"/", nil)
		req.Header.Set("User-Agent", "client-"+string(rune('a'+i))) // six anonymous sessions
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
			t.Fatalf("status %d over %s", resp.StatusCode, resp.Proto)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_, _ = io.ReadAll(stdout)
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 143 {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "c-*.thrv"))
	total := 0
	for _, f := range files {
		total += len(readTrace(t, f))
	}
	if len(files) < 2 || total != 6 {
		t.Fatalf("%d files with %d sessions; want rotation over several files holding all 6", len(files), total)
	}
}

// TestCaptureStatusLine drives requests through a capture, one of them to a
// backend that is down, and reads the status line's figures.
func TestCaptureStatusLine(t *testing.T) {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	path := filepath.Join(t.TempDir(), "s.thrv")
	sink := &capture.FileSink{Path: path}
	cp, err := capture.New(down, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Open(); err != nil {
		t.Fatal(err)
	}
	pln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx, pln) }()
	for range 3 {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+pln.Addr().String()+"/x", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	line := cp.Stats().String()
	if want := "open 0 · written 1 sessions, 3 exchanges, 0 frames, "; !strings.HasPrefix(line, want) || !strings.Contains(line, "· 502s 3 · dropped 0") {
		t.Fatalf("status line %q", line)
	}
}

// TestCaptureKill9KeepsOpenSessions kills a capture whose sessions are all
// still open (the idle time is an hour), a second after the demo driver's
// last answer: its journal has kept them, thrive traces repair folds them
// into the trace, and every request the driver made is there; the next
// capture over the same file refuses to start until then.
func TestCaptureKill9KeepsOpenSessions(t *testing.T) {
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	out := filepath.Join(t.TempDir(), "c.thrv")
	cmd, url, _ := startCaptureProcess(t, backend, out, "--session-idle", "1h")
	d := demo.Driver{Base: url, Sessions: 12, Concurrency: 4, TimeScale: 1e6, Seed: 4}
	st, err := d.Run(context.Background())
	if err != nil || st.Failures != 0 {
		t.Fatalf("driver: %v, %d failures", err, st.Failures)
	}
	// The journal takes what finished each second: poll it, bounded.
	journal := out + capture.JournalSuffix
	deadline := time.Now().Add(15 * time.Second)
	n := 0
	for n < st.Requests && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling a file another process writes
		n = countExchanges(journal)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n < st.Requests {
		t.Fatalf("the journal held %d exchanges of the driver's %d", n, st.Requests)
	}
	if code, _, errOut := thrive(t, "capture", "--listen", "127.0.0.1:0", "--target", backend, "--out", out); code != exitUsage ||
		!strings.Contains(errOut, "did not finish left its journal") {
		t.Fatalf("a capture over the journal: exit %d %s", code, errOut)
	}
	code, stdout, errOut := thrive(t, "traces", "repair", out)
	if code != exitOK || !strings.Contains(stdout, "12 sessions") {
		t.Fatalf("repair: exit %d\n%s\n%s", code, stdout, errOut)
	}
	exchanges := 0
	users := map[string]bool{}
	for _, s := range readTrace(t, out) { // whole again: it has its end record
		exchanges += len(s.Exchanges)
		users[s.Client] = true
	}
	if exchanges != st.Requests || len(users) != 12 {
		t.Fatalf("%d exchanges in %d sessions after repair, the driver made %d requests in 12", exchanges, len(users), st.Requests)
	}
	if _, err := os.Stat(journal); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the journal is still there: %v", err)
	}
}

// countExchanges counts the exchanges readable in a trace another process
// is writing.
func countExchanges(path string) int {
	t, err := traces.Open(path)
	if err != nil {
		return 0
	}
	defer t.Close()
	n := 0
	for {
		var s traces.Session
		if t.Reader().Next(&s) != nil {
			return n
		}
		n += len(s.Exchanges)
	}
}

// TestOneWriterPerTrace: while a capture writes a trace, a repair of it
// and a second capture onto it are refused, naming the process that
// writes it, and leave its trace and journal as they were; once the
// capture stopped, its trace has every session and no lock is left.
func TestOneWriterPerTrace(t *testing.T) {
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	out := filepath.Join(t.TempDir(), "c.thrv")
	cmd, url, stdout := startCaptureProcess(t, backend, out, "--session-idle", "1h")
	d := demo.Driver{Base: url, Sessions: 6, Concurrency: 3, TimeScale: 1e6, Seed: 3}
	st, err := d.Run(context.Background())
	if err != nil || st.Failures != 0 {
		t.Fatalf("driver: %v, %d failures", err, st.Failures)
	}
	holder := fmt.Sprintf("is being written by another process (pid %d, thrive capture, since ", cmd.Process.Pid)
	if code, _, errOut := thrive(t, "traces", "repair", out); code == exitOK || !strings.Contains(errOut, holder) {
		t.Errorf("a repair of the trace being written: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(out + capture.JournalSuffix); err != nil {
		t.Errorf("the live journal after the refused repair: %v", err)
	}
	if code, _, errOut := thrive(t, "capture", "--listen", "127.0.0.1:0", "--target", backend, "--out", out); code == exitOK || !strings.Contains(errOut, holder) {
		t.Errorf("a second capture onto the trace: exit %d, %s", code, errOut)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(stdout)
	_ = cmd.Wait()
	exchanges := 0
	for _, s := range readTrace(t, out) {
		exchanges += len(s.Exchanges)
	}
	if exchanges != st.Requests {
		t.Errorf("%d exchanges in the trace, the driver made %d requests", exchanges, st.Requests)
	}
	if _, err := os.Stat(out + capture.LockSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock after the capture stopped: %v", err)
	}
}

// TestCaptureFullDisk fills the disk under a capture (a small tmpfs, where
// the machine lets the test mount one): the users are still served, the
// capture says at once (not only at its stop) that the trace can no
// longer be written, and at its stop the trace reads whole to its last
// written session, which is as many as the summary says it captured.
func TestCaptureFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("no small tmpfs to fill here (%v)", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	out := filepath.Join(dir, "c.thrv")
	cmd, stdout, stderr := thriveProcessPiped(t, true, "capture", "--listen", "127.0.0.1:0", "--target", backend, "--out", out, "--session-idle", "100ms")
	line, err := stdout.ReadString('\n')
	m := capturingRE.FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("capture said %q, %v", line, err)
	}
	said := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "the trace keeps the sessions written before") {
				said <- sc.Text()
			}
		}
		close(said)
	}()
	// Some sessions reach the file first; then more than the disk holds.
	first := demo.Driver{Base: m[1], Sessions: 20, Concurrency: 4, TimeScale: 1e6, Seed: 4}
	if st, err := first.Run(context.Background()); err != nil || st.Failures != 0 {
		t.Fatalf("driver: %v, %d failures", err, st.Failures)
	}
	for deadline := time.Now().Add(15 * time.Second); countSessions(out) < 20 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // polling a file another process writes
	}
	d := demo.Driver{Base: m[1], Sessions: 600, Concurrency: 4, TimeScale: 1e6, Seed: 5}
	st, err := d.Run(context.Background())
	if err != nil || st.Failures != 0 {
		t.Fatalf("driver: %v, %d failures: the users must be served whatever the disk", err, st.Failures)
	}
	select {
	case l := <-said:
		t.Logf("said at once: %s", l)
	case <-time.After(30 * time.Second):
		t.Fatal("the capture did not say the trace failed while it ran")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	_ = cmd.Wait()
	var captured int
	if _, err := fmt.Sscanf(string(rest[bytes.Index(rest, []byte("captured ")):]), "captured %d sessions", &captured); err != nil {
		t.Fatalf("summary %q: %v", rest, err)
	}
	got := len(readTrace(t, out))
	t.Logf("the trace holds %d sessions, the summary says %d captured, of %d", got, captured, 20+d.Sessions)
	if got < 20 || got != captured || !strings.Contains(string(rest), "sessions (trace not writable)") {
		t.Errorf("the trace holds %d sessions; the summary says:\n%s", got, rest)
	}
}

// TestImportHAR: thrive import makes one trace of several HAR files
// (Chrome's and Playwright's), saying what each held and left out; a
// truncated one is an error naming its entry, after what it held before
// is written.
func TestImportHAR(t *testing.T) {
	dir := t.TempDir()
	har := func(name string) string { return filepath.Join("..", "..", "capture", "importer", "testdata", name) }
	out := filepath.Join(dir, "imported.thrv")
	code, stdout, errOut := thrive(t, "import", har("chrome.har"), har("playwright.har"), "--out", out)
	if code != exitOK || !strings.Contains(stdout, "chrome.har: 12 entries, 7 imported; 3 served from the browser's cache") ||
		!strings.Contains(stdout, "playwright.har: 7 entries, 6 imported") || !strings.Contains(stdout, "origin      recorded") {
		t.Fatalf("import: exit %d\n%s\n%s", code, stdout, errOut)
	}
	sessions := tracetest.ReadFile(t, out)
	exchanges := 0
	for _, s := range sessions {
		exchanges += len(s.Exchanges)
	}
	if exchanges != 13 {
		t.Errorf("%d exchanges in %d sessions, want the 13 imported", exchanges, len(sessions))
	}
	cut := filepath.Join(dir, "cut.thrv")
	code, stdout, errOut = thrive(t, "import", har("truncated.har"), "--out", cut)
	if code != exitError || !strings.Contains(errOut, "truncated.har: entry 6: unexpected EOF") || !strings.Contains(stdout, "3 imported") {
		t.Fatalf("a truncated HAR: exit %d\n%s\n%s", code, stdout, errOut)
	}
	if n := len(tracetest.ReadFile(t, cut)); n == 0 {
		t.Error("the sessions before the damage are not written")
	}
	if code, _, errOut := thrive(t, "import", out, "--out", filepath.Join(dir, "x.thrv")); code != exitError || !strings.Contains(errOut, "import reads HAR files (.har), packet captures (.pcap, .pcapng) and GoReplay files (.gor) so far") {
		t.Errorf("a trace given to import: exit %d, %s", code, errOut)
	}
}

// TestImportPcapOfTheDemo records the demo driver's sessions against the
// demo backend with tcpdump on loopback, imports the capture, and checks
// the trace against what the driver did: every request and WebSocket
// upgrade an exchange, every chat message a frame sent, a session per
// visit; then the trace replays as 100 users against the backend with no
// failure.
// tcpdump comes from .ci/run (THRIVE_REQUIRE_TCPDUMP=1 there).
func TestImportPcapOfTheDemo(t *testing.T) {
	requireTcpdump(t)
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	port := backend[strings.LastIndex(backend, ":")+1:]
	dir := t.TempDir()
	pcap := filepath.Join(dir, "demo.pcap")
	// The kernel drops packets when tcpdump falls behind (a loaded
	// machine): the recording is then not whole, and is made again.
	var drove demo.DriveStats
	for attempt := 1; ; attempt++ {
		dropped := recordDemo(t, backend, port, pcap, &drove)
		if dropped == "" {
			break
		}
		if attempt == 3 {
			t.Fatalf("the kernel dropped packets in each of 3 recordings: %s", dropped)
		}
		t.Logf("recording %d: the kernel dropped packets (%s): again", attempt, dropped)
	}
	trace := filepath.Join(dir, "demo.thrv")
	code, stdout, errOut := thrive(t, "import", pcap, "--port", port, "--out", trace, "--keep-secrets")
	if code != exitOK || !strings.Contains(stdout, " 0 incomplete") {
		t.Fatalf("import: exit %d\n%s\n%s", code, stdout, errOut)
	}
	if got := traceCounts(tracetest.ReadFile(t, trace)); got.exchanges != drove.Requests || got.sent != drove.ChatMessages || got.sessions != drove.Sessions {
		t.Errorf("the trace: %+v; the driver played %d sessions, %d requests, %d messages", got, drove.Sessions, drove.Requests, drove.ChatMessages)
	}
	code, stdout, errOut = thrive(t, "replay", trace, "--users", "100", "--run-time", "3s", "--scale-time", "-q")
	if code != exitOK || !strings.Contains(stdout, "failures 0 (0.00%)") || strings.Contains(stdout, "requests 0,") {
		t.Fatalf("replaying the imported trace: exit %d\n%s\n%s", code, stdout, errOut)
	}
}

// recordDemo runs tcpdump on loopback into pcap while the demo driver
// plays 12 sessions against backend (on port), and fills drove with what
// the driver did. It returns what tcpdump said of the packets the kernel
// dropped, or "" when it dropped none.
func recordDemo(t *testing.T, backend, port, pcap string, drove *demo.DriveStats) (dropped string) {
	t.Helper()
	stop := startTcpdump(t, port, pcap)
	code, stdout, errOut := thrive(t, "demo", "drive", "--base", backend, "--sessions", "12", "--time-scale", "1000", "--json")
	if code != exitOK {
		stop()
		t.Fatalf("drive: %s", errOut)
	}
	if err := json.Unmarshal([]byte(stdout), drove); err != nil {
		stop()
		t.Fatal(err)
	}
	return stop()
}

// requireTcpdump skips t without tcpdump, or fails it when
// THRIVE_REQUIRE_TCPDUMP=1 (as .ci/run sets it).
func requireTcpdump(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		if os.Getenv("THRIVE_REQUIRE_TCPDUMP") == "1" {
			t.Fatal("tcpdump is required (THRIVE_REQUIRE_TCPDUMP=1) and not on PATH")
		}
		t.Skip("no tcpdump: apt-get install tcpdump")
	}
}

// startTcpdump runs tcpdump on loopback into pcap, for the traffic of
// port, once it listens (the test is skipped where it cannot capture).
// Its ring holds 2,048 packets of loopback's largest. The returned stop
// ends it, once it has written every packet before the stop (a marker
// sent on a port of its own, which an import of port leaves out, is in
// the file), and returns what it said of the packets the kernel dropped,
// or "" when it dropped none.
func startTcpdump(t *testing.T, port, pcap string) (stop func() (dropped string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	mark, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	_, markPort, _ := net.SplitHostPort(mark.Addr().String())
	go func() {
		for {
			c, err := mark.Accept()
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		}
	}()
	dump := exec.CommandContext(ctx, "tcpdump", "-i", "lo", "-w", pcap, "-U", "--immediate-mode", "-s", "65600", "-B", "131072",
		fmt.Sprintf("tcp port %s or tcp port %s", port, markPort))
	stderr, err := dump.StderrPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := dump.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	said := bufio.NewReader(stderr)
	if line, err := said.ReadString('\n'); err != nil || !strings.Contains(line, "listening on lo") {
		_ = dump.Process.Kill()
		_ = dump.Wait()
		cancel()
		t.Skipf("tcpdump cannot capture here: %q %v", line, err)
	}
	t.Cleanup(func() { cancel(); _ = dump.Wait(); _ = mark.Close() }) // when the test ends before stop
	return func() string {
		t.Helper()
		defer cancel()
		marker := fmt.Sprintf("thrive-tcpdump-marker-%d", time.Now().UnixNano())
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", mark.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, marker)
		_ = c.Close()
		// Polling the file another process writes, bounded: tcpdump -U
		// writes each packet as it reads it, in order.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if b, _ := os.ReadFile(pcap); bytes.Contains(b, []byte(marker)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("tcpdump did not write the marker's packet in a minute")
			}
		}
		_ = dump.Process.Signal(os.Interrupt)
		rest, _ := io.ReadAll(said)
		if err := dump.Wait(); err != nil {
			t.Fatalf("tcpdump: %v: %s", err, rest)
		}
		m := regexp.MustCompile(`(?m)^(\d+) packets? dropped by kernel`).FindSubmatch(rest)
		switch {
		case m == nil:
			t.Fatalf("tcpdump did not say what the kernel dropped: %s", rest)
		case string(m[1]) != "0":
			return string(m[0])
		}
		return ""
	}
}

// TestCaptureInterface records the demo driver's sessions against the
// demo backend from loopback's packets (thrive capture --interface): the
// trace holds exactly the sessions, requests and chat messages the driver
// made, and a SIGTERM ends it with every session written and its journal
// gone. Killed with -9 instead, its journal held every exchange, and a
// repair makes them a whole trace. Without CAP_NET_RAW it says which
// privilege is missing and how to grant it. It needs root (.ci/run:
// THRIVE_REQUIRE_TCPDUMP=1).
func TestCaptureInterface(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("THRIVE_REQUIRE_TCPDUMP") == "1" {
			t.Fatal("capturing packets needs root here (THRIVE_REQUIRE_TCPDUMP=1)")
		}
		t.Skip("capturing packets needs root or CAP_NET_RAW")
	}
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	port := backend[strings.LastIndex(backend, ":")+1:]
	live := func(out string) (*exec.Cmd, *bufio.Reader) {
		cmd, stdout := thriveProcess(t, "capture", "--interface", "lo", "--port", port, "--out", out, "--session-idle", "1h", "-q")
		if line, err := stdout.ReadString('\n'); err != nil || !strings.Contains(line, "capturing HTTP to and from ports ["+port+"] on lo") {
			t.Fatalf("capture said %q, %v", line, err)
		}
		return cmd, stdout
	}
	drive := func(sessions int) demo.DriveStats {
		d := demo.Driver{Base: backend, Sessions: sessions, Concurrency: 4, TimeScale: 1e6, Seed: 5}
		st, err := d.Run(context.Background())
		if err != nil || st.Failures != 0 {
			t.Fatalf("driver: %v, %d failures", err, st.Failures)
		}
		return st
	}
	// waitJournal polls the journal, bounded, until it holds n exchanges.
	waitJournal := func(out string, n int) {
		deadline := time.Now().Add(15 * time.Second)
		for countExchanges(out+capture.JournalSuffix) < n && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // polling a file another process writes
		}
	}

	out := filepath.Join(t.TempDir(), "live.thrv")
	cmd, stdout := live(out)
	st := drive(12)
	waitJournal(out, st.Requests)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 143 {
		t.Fatalf("capture exited with %v:\n%s", err, rest)
	}
	if !strings.Contains(string(rest), "the kernel passed") || !strings.Contains(string(rest), "by interface, target http://127.0.0.1:"+port) {
		t.Errorf("summary:\n%s", rest)
	}
	if strings.Contains(string(rest), "and dropped 0\n") {
		if got := traceCounts(readTrace(t, out)); got.sessions != st.Sessions || got.exchanges != st.Requests || got.sent != st.ChatMessages {
			t.Errorf("the trace: %+v; the driver played %d sessions, %d requests, %d messages\n%s", got, st.Sessions, st.Requests, st.ChatMessages, rest)
		}
	} else {
		t.Logf("the kernel dropped packets on a loaded machine: the counts are not held\n%s", rest)
	}
	if _, err := os.Stat(out + capture.JournalSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a clean stop left the journal: %v", err)
	}

	killed := filepath.Join(t.TempDir(), "killed.thrv")
	cmd, _ = live(killed)
	st = drive(4)
	waitJournal(killed, st.Requests)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if code, stdout, errOut := thrive(t, "traces", "repair", killed); code != exitOK || !strings.Contains(stdout, "4 sessions") {
		t.Fatalf("repair after kill -9: exit %d\n%s\n%s", code, stdout, errOut)
	}
	if n := countExchanges(killed); n != st.Requests {
		t.Errorf("%d exchanges after kill -9 and repair, the driver made %d", n, st.Requests)
	}

	nobody := exec.CommandContext(t.Context(), thriveBin(), "capture", "--interface", "lo", "--port", port, "--out", filepath.Join(t.TempDir(), "x.thrv"))
	nobody.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	said, _ := nobody.CombinedOutput()
	if nobody.ProcessState.ExitCode() != exitError || !strings.Contains(string(said), "CAP_NET_RAW") || !strings.Contains(string(said), "hint: grant it: sudo setcap cap_net_raw+ep") {
		t.Errorf("without the privilege: exit %d\n%s", nobody.ProcessState.ExitCode(), said)
	}
}
