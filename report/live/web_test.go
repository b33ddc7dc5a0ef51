package live

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// do sends a request of method to url (a POST with the page's header)
// and returns the answer.
func do(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set(stopHeader, "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestWeb: the page and its script are served from the binary; a page
// that opens gets the last frame, then each new one; Stop stops the run
// while it plays and closes Quit once it is over; the files of the last
// frame are offered, no others; Close ends the streams it serves.
func TestWeb(t *testing.T) {
	var stops atomic.Int32
	w := NewWeb(func() { stops.Add(1) })
	srv, err := w.Serve(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr + "/"
	for _, path := range []string{"", "app.js", "style.css"} {
		resp := do(t, http.MethodGet, base+path)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /%s: %s", path, resp.Status)
		}
	}
	if err := w.Publish(&Frame{Title: "first", View: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	events := do(t, http.MethodGet, base+"events")
	defer events.Body.Close()
	if ct := events.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events: %s", ct)
	}
	lines := bufio.NewReader(events.Body)
	next := func() Frame {
		t.Helper()
		for {
			line, err := lines.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var f Frame
				if err := json.Unmarshal([]byte(data), &f); err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
	}
	if f := next(); f.Title != "first" {
		t.Errorf("first frame %q", f.Title)
	}
	if err := w.Publish(&Frame{Title: "second", View: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if f := next(); f.Title != "second" {
		t.Errorf("second frame %q", f.Title)
	}
	// Another site's page cannot send the header without CORS.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"stop", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a stop without the page's header: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	do(t, http.MethodPost, base+"stop").Body.Close()
	if stops.Load() != 1 {
		t.Errorf("Stop while the run plays: %d stops, want 1", stops.Load())
	}
	early := do(t, http.MethodGet, base+"files/r.json")
	early.Body.Close()
	if early.StatusCode != http.StatusNotFound {
		t.Errorf("a file before the end: %s", early.Status)
	}

	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, []byte(`{"version":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Publish(&Frame{Title: "end", Done: true, View: json.RawMessage(`{}`), Files: []Download{{Name: "r.json", Path: path}}}); err != nil {
		t.Fatal(err)
	}
	if f := next(); !f.Done || len(f.Files) != 1 || f.Files[0].Name != "r.json" {
		t.Errorf("last frame %+v", f)
	}
	resp := do(t, http.MethodGet, base+"files/r.json")
	b := make([]byte, 64)
	n, _ := resp.Body.Read(b)
	resp.Body.Close()
	if string(b[:n]) != `{"version":1}` || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("r.json: %q, %s", b[:n], resp.Header.Get("Content-Disposition"))
	}
	do(t, http.MethodPost, base+"stop").Body.Close()
	select {
	case <-w.Quit():
	case <-time.After(10 * time.Second):
		t.Fatal("Stop after the end did not close Quit")
	}
	if stops.Load() != 1 {
		t.Errorf("Stop after the end stopped the run again")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}
