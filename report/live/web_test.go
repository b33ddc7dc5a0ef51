package live

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// do sends a request of method to url (a POST with the page's header,
// and body if one is given) and returns the answer.
func do(t *testing.T, method, url string, body ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(strings.Join(body, "")))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set(controlHeader, "1")
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

// TestWebControls: Start and the change of users reach what the run
// offers, with the form the page sent, and say why when they cannot: not
// offered, refused, not a form, or not from the page's script.
func TestWebControls(t *testing.T) {
	w := NewWeb(func() {})
	srv, err := w.Serve(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr + "/"
	answer := func(path, body string) (int, string) {
		t.Helper()
		resp := do(t, http.MethodPost, base+path, body)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, why := answer("users", `{"users":5}`); code != http.StatusConflict || !strings.Contains(why, "not playing") {
		t.Errorf("users not offered: %d %q", code, why)
	}
	if code, why := answer("start", `{"users":5}`); code != http.StatusConflict || why != "the run is not waiting for a start" {
		t.Errorf("start not offered: %d %q", code, why)
	}
	var started Form
	w.OnStart(func(f Form) error {
		if f.Users == 0 {
			return errors.New("want users")
		}
		started = f
		return nil
	})
	var users []float64
	w.OnUsers(func(n int, rate float64) error { users = append(users, float64(n), rate); return nil })
	for _, tc := range []struct{ path, body, want string }{
		{"start", `{"users":0}`, "want users"},
		{"start", `{"users":`, "start: want a form as JSON"},
		{"users", `[1]`, "users: want a form as JSON"},
	} {
		if code, why := answer(tc.path, tc.body); code != http.StatusBadRequest || !strings.Contains(why, tc.want) {
			t.Errorf("%s %s: %d %q, want 400 saying %q", tc.path, tc.body, code, why, tc.want)
		}
	}
	if code, why := answer("start", `{"users":50,"spawn_rate":2.5,"run_time":"2m","mix":"browse=60,chat=40"}`); code != http.StatusNoContent ||
		started != (Form{Users: 50, SpawnRate: 2.5, RunTime: "2m", Mix: "browse=60,chat=40"}) {
		t.Errorf("start: %d %q, started %+v", code, why, started)
	}
	if code, why := answer("users", `{"users":80,"spawn_rate":4}`); code != http.StatusNoContent || !slices.Equal(users, []float64{80, 4}) {
		t.Errorf("users: %d %q, changes %v", code, why, users)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"users", strings.NewReader(`{"users":1}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a change without the page's header: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	w.OnUsers(nil)
	if code, _ := answer("users", `{"users":5}`); code != http.StatusConflict || len(users) != 2 {
		t.Errorf("users withdrawn: %d, changes %v", code, users)
	}
}
