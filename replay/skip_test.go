package replay_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// flakyItems is an API whose creates fail one time in three (a 500 with no
// id); items have auto-increment ids shared by all users. It counts the
// reads and deletes of items that do not exist: what a replay that sent a
// recorded id after its create failed would do.
type flakyItems struct {
	mu      sync.Mutex
	next    int
	items   map[int]bool
	creates int
	counts  map[string]int
}

func (f *flakyItems) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == "POST" && r.URL.Path == "/items" {
		f.creates++
		if f.creates%3 == 0 {
			f.counts["500"]++
			w.WriteHeader(500)
			fmt.Fprint(w, `{"error":"boom"}`)
			return
		}
		f.next++
		f.items[f.next] = true
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"item":{"id":%d}}`, f.next)
		return
	}
	var id int
	if _, err := fmt.Sscanf(r.URL.Path, "/items/%d", &id); err != nil || !f.items[id] {
		f.counts["404 "+r.Method]++
		w.WriteHeader(404)
		return
	}
	if r.Method == "DELETE" {
		delete(f.items, id)
	}
	f.counts["ok "+r.Method]++
	fmt.Fprintf(w, `{"id":%d}`, id)
}

// TestSkipWhenTheSourceFailed: a create that failed at replay gives no id,
// so the read and the delete of what it would have made are not sent (as a
// browser has nothing to follow), and are counted as skipped with the rule
// of the first value that did not come (the create's, though the delete
// takes the id from the read), not as failures; the server sees no request for an item
// that does not exist, where the recorded id would have gone out before.
func TestSkipWhenTheSourceFailed(t *testing.T) {
	app := &flakyItems{next: 500, items: map[int]bool{}, counts: map[string]int{}}
	srv := httptest.NewServer(app)
	defer srv.Close()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	s := &traces.Session{ID: "s", Profile: "p", Exchanges: []traces.Exchange{
		{Method: "POST", URL: "/items", Offset: 0, Duration: ms(2), Status: 201, ReqBody: traces.Body{Data: []byte(`{"name":"a"}`)},
			RespBody: traces.Body{Data: []byte(`{"item":{"id":7}}`)}},
		{Method: "GET", URL: "/items/7", Offset: ms(5), Duration: ms(2), Status: 200, RespBody: traces.Body{Data: []byte(`{"id":7}`)}},
		{Method: "DELETE", URL: "/items/7", Offset: ms(10), Duration: ms(2), Status: 200},
	}}
	_, sink := run(t, srv.URL, []*traces.Session{s}, 12, 300*time.Millisecond)
	app.mu.Lock()
	defer app.mu.Unlock()
	if app.counts["500"] == 0 || app.counts["ok DELETE"] == 0 {
		t.Fatalf("the server counted %v: no failed or no whole session", app.counts)
	}
	if app.counts["404 GET"]+app.counts["404 DELETE"] > 0 {
		t.Errorf("requests for items that do not exist: %v", app.counts)
	}
	skipped := 0
	for _, smp := range sink.samples {
		if smp.Kind != report.Skipped {
			continue
		}
		skipped++
		if smp.Failed() || !strings.HasPrefix(string(smp.Err), "skipped: depends on POST /items $.item.id") {
			t.Errorf("skipped %s: %q, failed %v", smp.Endpoint, smp.Err, smp.Failed())
		}
	}
	// Each failed create skips its read and its delete (a session cut by
	// the run's end may have sent neither).
	if skipped < app.counts["500"] || skipped > 2*app.counts["500"] {
		t.Errorf("%d skipped for %d failed creates", skipped, app.counts["500"])
	}
}
