package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture/importer"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
	"golang.org/x/sys/unix"
)

// gorMarker is the User-Agent of the requests sent after the driver's
// sessions (sendMarker).
const gorMarker = "thrive-test-gor-marker"

// TestImportGorOfTheDemo records the demo driver's browse, chat and import
// sessions against the demo backend with the real GoReplay on loopback
// (gor --input-raw --input-raw-track-response --output-file), imports its
// file, and checks the trace against the
// backend's own counters: an exchange per request it answered, an upgrade
// (101, a socket with no frames: GoReplay writes none) per WebSocket it
// accepted, a session per login, and one for the marker requests. Then the
// trace replays with 100 users against a fresh backend with no failure.
// GoReplay comes from .ci/run (THRIVE_REQUIRE_GOREPLAY=1 there): go
// install github.com/buger/goreplay@latest, with libpcap-dev; it captures
// as root.
func TestImportGorOfTheDemo(t *testing.T) {
	gor := goreplay(t)
	// GoReplay may lose a message (a packet the kernel dropped): the
	// recording is then not whole, and is made again, with a backend of
	// its own.
	var backend, dir string
	var drove demo.DriveStats
	for attempt := 1; ; attempt++ {
		backend = serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
		port := backend[strings.LastIndex(backend, ":")+1:]
		dir = t.TempDir()
		var lost string
		drove, lost = recordGor(t, gor, backend, port, filepath.Join(dir, "demo.gor"))
		if lost == "" {
			break
		}
		if attempt == 3 {
			t.Fatalf("GoReplay lost messages in each of 3 recordings: %s", lost)
		}
		t.Logf("recording %d: %s: again", attempt, lost)
	}
	files, err := filepath.Glob(filepath.Join(dir, "demo_*.gor"))
	if err != nil || len(files) != 1 {
		t.Fatalf("GoReplay wrote %q (%v): want one file", files, err)
	}
	trace := filepath.Join(dir, "demo.thrv")
	code, stdout, errOut := thrive(t, append(append([]string{"import"}, files...), "--out", trace, "--keep-secrets")...)
	if code != exitOK || strings.Contains(stdout, "left out") || regexp.MustCompile(`[1-9]\d* incomplete`).MatchString(stdout) {
		t.Fatalf("import: exit %d\n%s\n%s", code, stdout, errOut)
	}
	answered, upgrades, logins := demoCounts(t, backend)
	sessions := tracetest.ReadFile(t, trace)
	exchanges, sockets, frames := 0, 0, 0
	for _, s := range sessions {
		exchanges += len(s.Exchanges)
		for _, ex := range s.Exchanges {
			if ex.WebSocket != nil {
				sockets++
				frames += len(ex.WebSocket.Frames)
			}
		}
	}
	if exchanges != answered || sockets != upgrades || frames != 0 || len(sessions) != logins+1 {
		t.Errorf("the trace: %d sessions, %d exchanges, %d WebSockets with %d frames; the backend: %d logins (and the marker's visit), %d requests answered, %d upgrades",
			len(sessions), exchanges, sockets, frames, logins, answered, upgrades)
	}
	if answered <= drove.Requests || logins != drove.Sessions || upgrades == 0 || drove.Profiles["import"] == 0 {
		t.Errorf("the backend counted %d requests, %d logins, %d upgrades; the driver played %+v, and the markers", answered, logins, upgrades, drove)
	}
	fresh := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	code, stdout, errOut = thrive(t, "replay", trace, "--target", fresh, "--users", "100", "--run-time", "2s", "--scale-time", "-q")
	if code != exitOK || !strings.Contains(stdout, "failures 0 (0.00%)") {
		t.Fatalf("replaying the imported trace: exit %d\n%s\n%s", code, stdout, errOut)
	}
}

// goreplay returns GoReplay's binary (gor, or goreplay as go install
// names it, on PATH or in GOPATH/bin), or skips the test when there is
// none or it cannot capture (not root), unless THRIVE_REQUIRE_GOREPLAY=1.
func goreplay(t *testing.T) string {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("THRIVE_REQUIRE_GOREPLAY") == "1" {
			t.Fatalf("GoReplay is required (THRIVE_REQUIRE_GOREPLAY=1): %s", why)
		}
		t.Skip(why)
	}
	if os.Geteuid() != 0 {
		skip("GoReplay captures packets as root")
	}
	for _, name := range []string{"gor", "goreplay", filepath.Join(build.Default.GOPATH, "bin", "goreplay")} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	skip("no GoReplay: apt-get install libpcap-dev; go install github.com/buger/goreplay@latest")
	return ""
}

// recordGor runs GoReplay on loopback port into files named after out
// while the demo driver plays 12 sessions against backend, then sends the
// marker, waits for GoReplay to have written it and every exchange
// before, and stops it (SIGINT: it closes its file). The file is one
// chunk: once GoReplay 1.3 has rotated to a second chunk, it stops
// flushing on its interval (closing the first chunk stops its flusher),
// and what it wrote stays in its buffer until the next chunk or its end. It returns what the
// driver did, and what GoReplay lost ("" when nothing): the requests and
// responses it had not written 10 s after the marker (its messages expire
// in 2 s, and it flushes every 100 ms).
func recordGor(t *testing.T, gor, backend, port, out string) (drove demo.DriveStats, lost string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	watch := watchDir(t, filepath.Dir(out))
	cmd := exec.CommandContext(ctx, gor, "--input-raw", "127.0.0.1:"+port, "--input-raw-track-response",
		"--input-raw-buffer-size", "33554432", "--output-file", out, "--output-file-queue-limit", "0", "--output-file-flush-interval", "100ms")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	said := bufio.NewReader(stdout)
	// GoReplay says so once its capture is active, its filter set next.
	if line, err := said.ReadString('\n'); err != nil || !strings.HasPrefix(line, "Interface: lo ") {
		t.Fatalf("GoReplay said %q, %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, said) }()
	code, driven, errOut := thrive(t, "demo", "drive", "--base", backend, "--sessions", "12", "--time-scale", "1000", "--json")
	if code != exitOK {
		t.Fatalf("drive: %s", errOut)
	}
	if err := json.Unmarshal([]byte(driven), &drove); err != nil {
		t.Fatal(err)
	}
	// GoReplay 1.3 writes through a 4 KiB buffer that it flushes only
	// when full (its flusher stops at its first write), so each marker
	// carries 6 KiB: once marker k is in the file, all that GoReplay
	// wrote before it is, marker k-1's answer included.
	want := drove.Requests
	var got importer.GorStats
	for k := 1; ; k++ {
		sendMarker(ctx, t, backend, k)
		line := []byte(fmt.Sprintf("GET /api/tools/?marker=%d HTTP/1.1", k))
		// Each marker bounded on its own: a GoReplay that stopped writing
		// (it does, now and then, on a loaded machine) is a recording
		// lost, made again, not the test's whole time spent.
		written := false
		mctx, mcancel := context.WithTimeout(ctx, 20*time.Second)
		watch.until(mctx, func() bool {
			var in []byte
			got, in = gorWrote(filepath.Dir(out))
			written = bytes.Contains(in, line)
			return written
		})
		mcancel()
		if !written {
			lost = fmt.Sprintf("it did not write marker %d in 20 s (%+v of %d requests)", k, got, want)
			break
		}
		if got.Exchanges >= want+k-1 {
			break
		}
		if k == 5 {
			lost = fmt.Sprintf("it wrote %+v of %d requests before marker %d", got, want, k)
			break
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("GoReplay: %v", err)
	}
	if after, _ := gorWrote(filepath.Dir(out)); lost == "" && (after.Requests != after.Responses || after.Exchanges != after.Requests) {
		lost = fmt.Sprintf("stopped, it wrote %+v", after)
	}
	return drove, lost
}

// sendMarker sends marker request k, which carries 6 KiB, and reads its
// answer.
func sendMarker(ctx context.Context, t *testing.T, backend string, k int) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/tools/?marker=%d", backend, k), nil)
	req.Header.Set("User-Agent", gorMarker)
	req.Header.Set("X-Pad", strings.Repeat("x", 6<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// gorWrote reads the GoReplay files in dir so far, in the order of their
// chunks, and returns what they hold, and their bytes. A file being
// written ends in the middle of a record.
func gorWrote(dir string) (st importer.GorStats, all []byte) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.gor"))
	ordered := make([]string, len(files))
	for _, f := range files {
		var n int
		if _, err := fmt.Sscanf(filepath.Base(f), "demo_%d.gor", &n); err == nil && n < len(ordered) {
			ordered[n] = f
		}
	}
	var rd importer.GorReader
	for _, f := range ordered {
		if b, err := os.ReadFile(f); err == nil {
			_, _ = rd.Read(bytes.NewReader(b), f)
			all = append(all, b...)
		}
	}
	return rd.End(), all
}

// dirWatch tells when files in a directory are written (inotify).
type dirWatch struct{ fd int }

// watchDir watches dir until the test ends.
func watchDir(t *testing.T, dir string) *dirWatch {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	return &dirWatch{fd: fd}
}

// until checks done now and after each write to the directory, until it
// holds or ctx is done.
func (w *dirWatch) until(ctx context.Context, done func() bool) {
	buf := make([]byte, 64<<10)
	for !done() {
		deadline, _ := ctx.Deadline()
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		for {
			if _, err := unix.Read(w.fd, buf); err != nil {
				break // EAGAIN: every event read
			}
		}
	}
}

// demoCounts reads the demo backend's counters: the requests it answered
// (WebSocket upgrades included), the upgrades, and the logins.
func demoCounts(t *testing.T, base string) (answered, upgrades, logins int) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, m := range regexp.MustCompile(`(?m)^http_requests_total\{(.*)\} (\d+)$`).FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.Atoi(m[2])
		answered += n
		if strings.Contains(m[1], `code="101"`) {
			upgrades += n
		}
	}
	if m := regexp.MustCompile(`(?m)^demo_logins_total (\d+)$`).FindSubmatch(b); m != nil {
		logins, _ = strconv.Atoi(string(m[1]))
	}
	return answered, upgrades, logins
}
