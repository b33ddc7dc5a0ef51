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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture/importer"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/internal/loopbacktest"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
	"golang.org/x/sys/unix"
)

// gorMarker is the User-Agent of the requests sent after the driver's
// sessions (sendMarker).
const gorMarker = "thrive-test-gor-marker"

// TestImportGorOfTheDemo records the demo driver's browse, chat and import
// sessions against the demo backend with the real GoReplay on loopback
// (gor --input-raw --input-raw-track-response --output-file), with the
// port of a marker server of its own, imports its file with --port, the
// backend's, and checks the trace against the backend's own counters: an
// exchange per request it answered, an upgrade (101, a socket with no
// frames: GoReplay writes none) per WebSocket it accepted, a session per
// login; the markers each left out and counted. Then the trace replays
// with 100 users against a fresh backend with no failure.
// GoReplay comes from .ci/run (THRIVE_REQUIRE_GOREPLAY=1 there): go
// install github.com/buger/goreplay@latest, with libpcap-dev; it captures
// as root.
func TestImportGorOfTheDemo(t *testing.T) {
	gor := goreplay(t)
	// GoReplay may lose a message (a packet the kernel dropped): the
	// recording is then not whole, and is made again, with a backend of
	// its own.
	var backend, port, dir string
	var drove demo.DriveStats
	var markers int
	for attempt := 1; ; attempt++ {
		backend = serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
		port = backend[strings.LastIndex(backend, ":")+1:]
		dir = t.TempDir()
		var lost string
		drove, markers, lost = recordGor(t, gor, backend, port, filepath.Join(dir, "demo.gor"))
		if lost == "" {
			break
		}
		if attempt == 3 {
			t.Fatalf("GoReplay lost messages in each of 3 recordings: %s", lost)
		}
		t.Logf("recording %d: %s: again", attempt, lost)
	}
	files := gorFiles(filepath.Join(dir, "demo.gor"))
	if len(files) != 1 {
		t.Fatalf("GoReplay wrote %q: want one file", files)
	}
	trace := filepath.Join(dir, "demo.thrv")
	code, stdout, errOut := thrive(t, append(append([]string{"import"}, files...), "--port", port, "--out", trace, "--keep-secrets")...)
	other := fmt.Sprintf("; %d exchanges to ports other than [%s] left out\n", markers, port)
	if code != exitOK || !strings.Contains(stdout, other) || strings.Count(stdout, "left out") != 1 || regexp.MustCompile(`[1-9]\d* incomplete`).MatchString(stdout) {
		t.Fatalf("import of the demo's requests and %d markers: exit %d\n%s\n%s", markers, code, stdout, errOut)
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
	if exchanges != answered || sockets != upgrades || frames != 0 || len(sessions) != logins {
		t.Errorf("the trace: %d sessions, %d exchanges, %d WebSockets with %d frames; the backend: %d logins, %d requests answered, %d upgrades",
			len(sessions), exchanges, sockets, frames, logins, answered, upgrades)
	}
	if answered != drove.Requests || logins != drove.Sessions || upgrades == 0 || drove.Profiles["import"] == 0 {
		t.Errorf("the backend counted %d requests, %d logins, %d upgrades; the driver played %+v", answered, logins, upgrades, drove)
	}
	fresh := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	code, stdout, errOut = thrive(t, "replay", trace, "--target", fresh, "--users", "100", "--run-time", "2s", "--scale-time", "-q")
	if code != exitOK || !strings.Contains(stdout, "failures 0 (0.00%)") {
		t.Fatalf("replaying the imported trace: exit %d\n%s\n%s", code, stdout, errOut)
	}
}

// goreplay returns GoReplay's binary, or skips the test when there is
// none or it cannot capture (not root), unless THRIVE_REQUIRE_GOREPLAY=1.
func goreplay(t *testing.T) string {
	t.Helper()
	path, missing := findGoreplay()
	if missing != "" {
		skipGoreplay(t, missing)
	}
	return path
}

// findGoreplay returns GoReplay's binary (gor, or goreplay as go install
// names it, on PATH or in GOPATH/bin), or why there is none to use: none
// found, or it cannot capture (not root).
func findGoreplay() (path, missing string) {
	if os.Geteuid() != 0 {
		return "", "GoReplay captures packets as root"
	}
	for _, name := range []string{"gor", "goreplay", filepath.Join(build.Default.GOPATH, "bin", "goreplay")} {
		if path, err := exec.LookPath(name); err == nil {
			return path, ""
		}
	}
	return "", "no GoReplay: apt-get install libpcap-dev; go install github.com/buger/goreplay@latest"
}

// skipGoreplay skips t for want of GoReplay (why), or fails it when
// THRIVE_REQUIRE_GOREPLAY=1.
func skipGoreplay(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("THRIVE_REQUIRE_GOREPLAY") == "1" {
		t.Fatalf("GoReplay is required (THRIVE_REQUIRE_GOREPLAY=1): %s", why)
	}
	t.Skip(why)
}

// recordGor runs GoReplay (startGor) on loopback port into files named
// after out while the demo driver plays 12 sessions against backend, then
// stops it (gorRecorder.stop). It returns what the driver did, the
// markers sent, and what GoReplay lost ("" when nothing).
func recordGor(t *testing.T, gor, backend, port, out string) (drove demo.DriveStats, markers int, lost string) {
	t.Helper()
	rec := startGor(t, gor, out, port)
	code, driven, errOut := thrive(t, "demo", "drive", "--base", backend, "--sessions", "12", "--time-scale", "1000", "--json")
	if code != exitOK {
		t.Fatalf("drive: %s", errOut)
	}
	if err := json.Unmarshal([]byte(driven), &drove); err != nil {
		t.Fatal(err)
	}
	markers, after, lost := rec.stop(drove.Requests)
	if lost == "" && (after.Requests != after.Responses || after.Exchanges != after.Requests || after.Requests != drove.Requests+markers) {
		lost = fmt.Sprintf("stopped, it wrote %+v of %d requests and %d markers", after, drove.Requests, markers)
	}
	return drove, markers, lost
}

// A gorRecorder is GoReplay recording loopback ports, and its marker
// server's, into files named after out (out_0.gor: GoReplay numbers its
// chunks).
type gorRecorder struct {
	t      *testing.T
	ctx    context.Context
	cmd    *exec.Cmd
	watch  *dirWatch
	out    string
	marker string // the marker server's address (serveMarkers)
}

// startGor runs GoReplay on loopback ports, and on the port of a marker
// server of its own (serveMarkers), an --input-raw each, into files named
// after out, once its capture of each is active. It is killed when the
// test ends, if not stopped before.
func startGor(t *testing.T, gor, out string, ports ...string) *gorRecorder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	r := &gorRecorder{t: t, ctx: ctx, watch: watchDir(t, filepath.Dir(out)), out: out, marker: serveMarkers(t)}
	ports = append(ports, r.marker[strings.LastIndex(r.marker, ":")+1:])
	var args []string
	for _, p := range ports {
		args = append(args, "--input-raw", "127.0.0.1:"+p)
	}
	// --input-raw-override-snaplen does not, as ca2af77 said, keep
	// GoReplay from losing the first 4 KiB segment of an answer: that
	// loss is its reassembly race (gorHeadless), with or without it.
	r.cmd = exec.CommandContext(ctx, gor, append(args, "--input-raw-track-response", "--input-raw-buffer-size", "33554432", "--input-raw-override-snaplen",
		"--output-file", out, "--output-file-queue-limit", "0", "--output-file-flush-interval", "100ms")...)
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r.cmd.Stderr = os.Stderr
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
		}
		cancel()
	})
	said := bufio.NewReader(stdout)
	// GoReplay says so once a port's capture is active, its filter set
	// next.
	for range ports {
		if line, err := said.ReadString('\n'); err != nil || !strings.HasPrefix(line, "Interface: lo ") {
			t.Fatalf("GoReplay said %q, %v", line, err)
		}
	}
	go func() { _, _ = io.Copy(io.Discard, said) }()
	return r
}

// stop sends marker requests to the marker server (sendMarker), until
// GoReplay has written the answer to the last after want requests, and
// the markers', then stops GoReplay (SIGINT: it writes what it holds
// and closes its file). It returns the markers sent, what the files hold
// once GoReplay stopped, and what GoReplay lost before ("" when nothing):
// a marker's answer it had not written 20 s after it was answered (its
// messages expire in 2 s, and it flushes every 100 ms; each marker bounded
// on its own: a GoReplay that lost a message is a recording lost, made
// again, not the test's whole time spent), or requests and responses it
// had not written by the fifth marker's answer.
//
// GoReplay 1.3 writes through a 4 KiB buffer that it flushes only when
// full (its flusher stops at its first write; and once it has rotated to
// a second chunk, it stops flushing on its interval): a marker's answer
// carries 9 KiB, written whole once GoReplay handed it on, and all that
// GoReplay handed on before with it. The file is one chunk.
func (r *gorRecorder) stop(want int) (markers int, wrote importer.GorStats, lost string) {
	t := r.t
	t.Helper()
	for k := 1; ; k++ {
		sendMarker(r.ctx, t, r.marker, k)
		markers = k
		answer := []byte(fmt.Sprintf("\nHTTP/1.1 200 OK\r\nX-Marker: %d\r\n", k))
		var in []byte
		ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
		r.watch.until(ctx, func() bool {
			wrote, in = gorWrote(r.out)
			return bytes.Contains(in, answer)
		})
		cancel()
		if !bytes.Contains(in, answer) {
			lost = fmt.Sprintf("it did not write marker %d's answer in 20 s (%+v of %d requests)", k, wrote, want)
			break
		}
		// Every request, and the markers' (the answers before are judged
		// once GoReplay has stopped: the reader counts the last once its
		// separator, still in the buffer, is written).
		if wrote.Requests >= want+k {
			break
		}
		if k == 5 {
			lost = fmt.Sprintf("it wrote %+v of %d requests and 5 markers by marker 5's answer", wrote, want)
			break
		}
	}
	if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Wait(); err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("GoReplay: %v", err)
	}
	wrote, _ = gorWrote(r.out)
	return markers, wrote, lost
}

// serveMarkers serves marker requests on loopback until the test ends,
// and returns its address: each answer, 9 KiB with the marker's number in
// its X-Marker header, goes in one write, on loopback one TCP segment.
// GoReplay 1.3 reassembles a message's segments in ten goroutines at once,
// and now and then loses a message of several: two of them each take a
// segment for the first of a new message (a marker of 6 KiB sent with
// net/http, which writes through a 4 KiB buffer, was lost in about half
// the recordings under -race).
func serveMarkers(t *testing.T) string {
	t.Helper()
	pad := strings.Repeat("x", 9<<10) // past twice GoReplay's 4 KiB buffer
	return loopbacktest.Serve(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Marker: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			req.URL.Query().Get("marker"), len(pad), pad))
	})
}

// sendMarker sends marker request k to the marker server at addr, in one
// write (one TCP segment, see serveMarkers), on a connection of its own,
// and reads its answer, within 20 s.
func sendMarker(ctx context.Context, t *testing.T, addr string, k int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := new(net.Dialer).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	if _, err := fmt.Fprintf(c, "GET /?marker=%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n", k, addr, gorMarker); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("marker %d: %v", k, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Marker") != strconv.Itoa(k) {
		t.Fatalf("marker %d answered %s, X-Marker %q", k, resp.Status, resp.Header.Get("X-Marker"))
	}
}

// gorFiles returns the chunks GoReplay wrote of out so far (out_0.gor,
// out_1.gor, ...), in their order.
func gorFiles(out string) []string {
	stem := strings.TrimSuffix(out, ".gor") + "_"
	files, _ := filepath.Glob(stem + "*.gor")
	ordered := make([]string, len(files))
	for _, f := range files {
		if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(f, stem), ".gor")); err == nil && n >= 0 && n < len(ordered) {
			ordered[n] = f
		}
	}
	return slices.DeleteFunc(ordered, func(f string) bool { return f == "" })
}

// gorWrote reads the chunks GoReplay wrote of out so far, in their order,
// and returns what they hold, and their bytes. A file being written ends
// in the middle of a record.
func gorWrote(out string) (st importer.GorStats, all []byte) {
	var rd importer.GorReader
	for _, f := range gorFiles(out) {
		if b, err := os.ReadFile(f); err == nil {
			_, _ = rd.Read(bytes.NewReader(b), f)
			all = append(all, b...)
		}
	}
	return rd.End(), all
}

// gorHeadless reads the chunks GoReplay wrote of out and returns the
// first line of each request whose answer it wrote headless: GoReplay 1.3
// reassembles a message's segments in ten goroutines, out of the order
// read, and when the second segment of a new answer (of a server that
// writes 4 KiB at a time) comes first and looks whole, it writes it
// alone, as an answer of its own with the id of its sequence number, 4096
// after the request's, and drops the first. other counts the requests
// with no answer and the answers with no request that are not so (a tail
// whose request was answered is not: GoReplay writes it twice).
func gorHeadless(out string) (headless []gorRequest, other int) {
	requests, answers := map[string]gorRequest{}, map[string]bool{}
	for _, f := range gorFiles(out) {
		b, _ := os.ReadFile(f)
		for _, rec := range bytes.Split(b, []byte("\n\U0001F435\U0001F648\U0001F649\n")) {
			meta, data, _ := bytes.Cut(rec, []byte("\n"))
			if f := strings.Fields(string(meta)); len(f) > 2 && f[0] == "1" {
				line, _, _ := strings.Cut(string(data), "\r\n")
				ns, _ := strconv.ParseInt(f[2], 10, 64)
				req := gorRequest{line: line, at: time.Unix(0, ns)}
				if r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data))); err == nil {
					req.cookies = r.Cookies()
				}
				requests[f[1]] = req
			} else if len(f) > 1 && f[0] == "2" {
				answers[f[1]] = true
			}
		}
	}
	// shift returns id with its last 8 hex digits (the request's
	// acknowledgment number, its answer's sequence number) moved by d.
	shift := func(id string, d int64) string {
		n, err := strconv.ParseUint(id[len(id)-min(8, len(id)):], 16, 32)
		if err != nil || len(id) != 24 {
			return ""
		}
		return fmt.Sprintf("%s%08x", id[:16], uint32(int64(n)+d))
	}
	for id, req := range requests {
		if !answers[id] {
			if _, asked := requests[shift(id, 4096)]; answers[shift(id, 4096)] && !asked {
				headless = append(headless, req)
			} else {
				other++
			}
		}
	}
	for id := range answers {
		if _, ok := requests[id]; !ok {
			if _, ok := requests[shift(id, -4096)]; !ok {
				other++
			}
		}
	}
	slices.SortFunc(headless, func(a, b gorRequest) int { return a.at.Compare(b.at) })
	return headless, other
}

// gorRequest is a request GoReplay wrote: its first line, when it was
// read, and its cookies.
type gorRequest struct {
	line    string
	at      time.Time
	cookies []*http.Cookie
}

func (r gorRequest) String() string { return r.line }

// gorFormPosts counts the POSTs of sessions that come, within their
// session, after a GET of lost (a request whose answer GoReplay wrote
// headless, so that the trace has neither it nor the page it answered):
// those whose form, and CSRF token, may have come from a page the replay
// never sees. A lost request's session is the one whose requests carry
// its session cookie (its CSRF cookie before a login); one that matches
// none is logged, and explains nothing.
func gorFormPosts(t *testing.T, sessions []*traces.Session, lost []gorRequest) int {
	t.Helper()
	posts := 0
	for _, s := range sessions {
		var first time.Time // the session's first GET whose answer was lost
		for _, req := range lost {
			if strings.HasPrefix(req.line, "GET ") && (first.IsZero() || req.at.Before(first)) && gorSessionOf(s, req) {
				first = req.at
			}
		}
		if first.IsZero() {
			continue
		}
		n := 0
		for _, ex := range s.Exchanges {
			if ex.Method == http.MethodPost && s.Start.Add(ex.Offset).After(first) {
				n++
			}
		}
		t.Logf("session %s: %d POSTs after its first GET whose answer GoReplay lost, at %s", s.ID, n, first.Format("15:04:05.000000"))
		posts += n
	}
	for _, req := range lost {
		if !slices.ContainsFunc(sessions, func(s *traces.Session) bool { return gorSessionOf(s, req) }) {
			t.Logf("%s (GoReplay lost its answer's head) is of no session of the trace: it explains no refusal", req.line)
		}
	}
	return posts
}

// gorSessionOf tells whether a request of s carries req's sessionid
// cookie, or its csrftoken cookie if it has no sessionid.
func gorSessionOf(s *traces.Session, req gorRequest) bool {
	var key *http.Cookie
	for _, c := range req.cookies {
		if c.Name == "sessionid" || c.Name == "csrftoken" && key == nil {
			key = c
		}
	}
	if key == nil {
		return false
	}
	for _, ex := range s.Exchanges {
		for _, h := range ex.ReqHeader {
			if !strings.EqualFold(h.Name, "Cookie") {
				continue
			}
			cookies, _ := http.ParseCookie(h.Value)
			if slices.ContainsFunc(cookies, func(c *http.Cookie) bool { return c.Name == key.Name && c.Value == key.Value }) {
				return true
			}
		}
	}
	return false
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
	return int(counter(t, base, "http_requests_total", "")), int(counter(t, base, "http_requests_total", `code="101"`)),
		int(counter(t, base, "demo_logins_total", ""))
}
