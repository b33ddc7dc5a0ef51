package replay_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

// TestSketchOfAnswers replays a session of a JSON API and a page against
// a server that counts what it answered: the result's sketch of each
// endpoint has the answers the server gave, the share of them that had a
// field the server gives one time in three, their media types and cookie
// names, and the longest body; an answer that failed is not sketched.
func TestSketchOfAnswers(t *testing.T) {
	var mu sync.Mutex
	items, withPrice, longest, pages := 0, 0, 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/api/items/":
			items++
			if items%5 == 0 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			body := fmt.Sprintf(`{"count": %d, "results": [{"id": %d, "name": "n%d"}]}`, items, items, items)
			if items%3 == 0 {
				withPrice++
				body = fmt.Sprintf(`{"count": %d, "results": [{"id": %d, "name": "n%d", "price": 2.5}]}`, items, items, items)
			}
			longest = max(longest, len(body))
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: fmt.Sprint(items)})
			_, _ = w.Write([]byte(body))
		default:
			pages++
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write([]byte("<!doctype html><p>hello</p>"))
		}
	}))
	defer srv.Close()
	ex := func(url string, at time.Duration) traces.Exchange {
		return traces.Exchange{Method: "GET", URL: url, Status: 200, Offset: at, Duration: time.Millisecond}
	}
	lib := replay.FromSessions([]*traces.Session{{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{
		ex("/", 0), ex("/api/items/", 100*time.Millisecond), ex("/api/items/", 200*time.Millisecond),
	}}})
	e, err := replay.New(srv.URL, lib)
	if err != nil {
		t.Fatal(err)
	}
	// Few enough answers that the sketch reads every JSON one.
	plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: 3, RunTime: 900 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Play(context.Background(), plan, time.Now(), nil, "", report.RunParams{})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	byName := map[string]*report.AnswerStats{}
	for _, ep := range res.Endpoints {
		byName[ep.Name] = ep.Answers
	}
	api, page := byName["GET /api/items/"], byName["GET /"]
	if api == nil || page == nil {
		t.Fatalf("no sketch: %v", byName)
	}
	ok := int64(items - items/5)
	if api.Answers != ok || api.JSON != ok || ok > 64 {
		t.Errorf("the server answered %d of %d with 200; sketched %d, %d as JSON", ok, items, api.Answers, api.JSON)
	}
	fields := map[string]report.FieldStats{}
	for _, f := range api.Fields {
		fields[f.Path] = f
	}
	if f := fields["$.results[].price"]; f.Answers != int64(withPrice) || f.Types["number"] != int64(withPrice) {
		t.Errorf("price in %d answers, the server gave it in %d: %+v", f.Answers, withPrice, f)
	}
	if f := fields["$.results[].id"]; f.Answers != ok || len(f.Types) != 1 {
		t.Errorf("id: %+v", f)
	}
	if api.Headers["content-type: application/json"] != ok || api.Headers["set-cookie: sid"] != ok || api.Size.Max != int64(longest) {
		t.Errorf("headers %v, size %+v; the longest body was %d", api.Headers, api.Size, longest)
	}
	if page.Answers != int64(pages) || page.JSON != 0 || len(page.Fields) != 0 || page.Headers["cache-control"] != int64(pages) ||
		page.Headers["content-type: text/html"] != int64(pages) || page.Size.Max != int64(len("<!doctype html><p>hello</p>")) {
		t.Errorf("the page (served %d times): %+v", pages, page)
	}
	if strings.Contains(fmt.Sprint(api.Headers), "busy") {
		t.Errorf("a 503 was sketched: %v", api.Headers)
	}
}
