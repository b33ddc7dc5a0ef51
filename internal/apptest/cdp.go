package apptest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Browser is a headless Chromium driven over the DevTools protocol: pages
// open in browser contexts of their own (like separate browser profiles:
// cookies, cache and connections of their own), and scripts are evaluated
// in them. It ends with the test.
type Browser struct {
	tb   testing.TB
	cmd  *exec.Cmd
	conn *websocket.Conn
	wmu  sync.Mutex // one writer at a time (gorilla/websocket)

	mu      sync.Mutex
	next    int
	pending map[int]chan cdpReply
	// listeners take the events of the pages (by session id) that asked
	// for them; the reader calls them, so they must not block.
	listeners map[string]func(method string, params json.RawMessage)
	done      chan struct{} // closed when the reader ends
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// StartBrowser starts Chromium (see Chromium) with remote debugging on a
// loopback port and connects to it.
func StartBrowser(tb testing.TB) *Browser {
	tb.Helper()
	return StartBrowserWith(tb, "")
}

// StartBrowserWith starts Chromium as StartBrowser does, with home as its
// HOME (where it finds its NSS certificate database, .pki/nssdb) unless
// empty, and more command-line arguments (--proxy-server).
func StartBrowserWith(tb testing.TB, home string, args ...string) *Browser {
	tb.Helper()
	chromium := Chromium(tb)
	// The profile is not under the test's TempDir: Chromium's helper
	// processes may still write there as the test's cleanup removes it.
	profile, err := os.MkdirTemp("", "thrive-chromium-")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--user-data-dir="+profile)
	cmd.Args = append(append(cmd.Args, args...), "about:blank")
	if home != "" {
		cmd.Env = append(os.Environ(), "HOME="+home)
	}
	// Chromium and its helpers in a process group of their own, all
	// killed at the end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	b := &Browser{tb: tb, cmd: cmd, pending: map[int]chan cdpReply{}, listeners: map[string]func(string, json.RawMessage){}, done: make(chan struct{})}
	tb.Cleanup(func() {
		if b.conn != nil {
			b.conn.Close()
		}
		cancel()
		_ = cmd.Wait()
		_ = os.RemoveAll(profile) // best effort: a helper may still hold a file
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	var url string
	select {
	case url = <-found:
	case <-time.After(30 * time.Second):
		tb.Fatal("chromium did not say where its DevTools listen within 30 s")
	}
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		tb.Fatalf("devtools: %v", err)
	}
	resp.Body.Close()
	b.conn = conn
	go b.read()
	return b
}

// read hands each answer to its caller, and each event to the listener of
// the page it came from (events of pages that have none are dropped).
func (b *Browser) read() {
	defer close(b.done)
	for {
		var m struct {
			ID        int             `json:"id"`
			Method    string          `json:"method"`
			Params    json.RawMessage `json:"params"`
			SessionID string          `json:"sessionId"`
			cdpReply
		}
		if err := b.conn.ReadJSON(&m); err != nil {
			return
		}
		if m.ID == 0 {
			b.mu.Lock()
			listen := b.listeners[m.SessionID]
			b.mu.Unlock()
			if listen != nil && m.Method != "" {
				listen(m.Method, m.Params)
			}
			continue
		}
		b.mu.Lock()
		ch := b.pending[m.ID]
		delete(b.pending, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.cdpReply
		}
	}
}

// call sends a DevTools command, to a page's session if session is set, and
// returns its result.
func (b *Browser) call(session, method string, params any, timeout time.Duration) (json.RawMessage, error) {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpReply, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b.wmu.Lock()
	err := b.conn.WriteJSON(msg)
	b.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		return r.Result, nil
	case <-b.done:
		return nil, errors.New(method + ": the browser went away")
	case <-time.After(timeout):
		return nil, fmt.Errorf("%s: no answer in %v", method, timeout)
	}
}

// Page is a tab of a Browser.
type Page struct {
	b       *Browser
	session string
	// net is the page's network traffic, when it records it (Record).
	net *netLog
}

// Open opens url in a new browser context of its own and returns its page.
func (b *Browser) Open(url string) *Page {
	b.tb.Helper()
	return b.open(url, false)
}

// Record opens url as Open does, with the page's network traffic recorded
// from its first request, as Chrome DevTools records a tab's: see
// Page.HAR.
func (b *Browser) Record(url string) *Page {
	b.tb.Helper()
	return b.open(url, true)
}

// open opens url in a new browser context, recording the page's traffic
// if record is set.
func (b *Browser) open(url string, record bool) *Page {
	b.tb.Helper()
	var bc struct {
		ID string `json:"browserContextId"`
	}
	var t struct {
		ID string `json:"targetId"`
	}
	var s struct {
		ID string `json:"sessionId"`
	}
	steps := []struct {
		method string
		params any
		into   any
	}{
		{"Target.createBrowserContext", map[string]any{"disposeOnDetach": true}, &bc},
		{"Target.createTarget", nil, &t},
		{"Target.attachToTarget", nil, &s},
	}
	for i, st := range steps {
		switch i {
		case 1:
			st.params = map[string]any{"url": "about:blank", "browserContextId": bc.ID}
		case 2:
			st.params = map[string]any{"targetId": t.ID, "flatten": true}
		}
		res, err := b.call("", st.method, st.params, 30*time.Second)
		if err == nil {
			err = json.Unmarshal(res, st.into)
		}
		if err != nil {
			b.tb.Fatalf("devtools: %v", err)
		}
	}
	p := &Page{b: b, session: s.ID}
	if record {
		if err := p.record(t.ID); err != nil {
			b.tb.Fatalf("devtools: %v", err)
		}
	}
	if _, err := b.call(p.session, "Page.navigate", map[string]any{"url": url}, 30*time.Second); err != nil {
		b.tb.Fatalf("devtools: %v", err)
	}
	return p
}

// WaitText waits until the element of id has text, up to timeout, and
// returns it. The waiting is the page's own: a promise that settles when
// the text is there.
func (p *Page) WaitText(id string, timeout time.Duration) (string, error) {
	expr := fmt.Sprintf(`new Promise(ok => { const t = () => { const e = document.getElementById(%q);
		if (e && e.textContent) ok(e.textContent); else setTimeout(t, 10); }; t(); })`, id)
	var text string
	err := p.Eval(expr, &text, timeout)
	return text, err
}
