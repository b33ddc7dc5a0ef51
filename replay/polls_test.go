package replay_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
)

// jobServer runs jobs that take took() each: POST /jobs answers
// {"id":"job-N"}, GET /jobs/ID says {"state":"running","progress":P}
// until the job is done, then {"state":"done","result":{"id":N}}; GET
// /results/N is a 409 before the job is done. It counts the 409s and the
// polls.
type jobServer struct {
	*httptest.Server
	took                   func() time.Duration
	mu                     sync.Mutex
	done                   map[int]time.Time
	next                   int
	notReady, polls, fetch atomic.Int64
}

func newJobServer(t *testing.T) *jobServer {
	j := &jobServer{done: map[int]time.Time{}}
	j.took = func() time.Duration { return 300 * time.Millisecond }
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		var n int
		switch {
		case r.Method == "POST" && r.URL.Path == "/jobs":
			j.mu.Lock()
			j.next++
			n = j.next
			j.done[n] = time.Now().Add(j.took())
			j.mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"id":"job-%d"}`, n)
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/jobs/job-"):
			_, _ = fmt.Sscanf(r.URL.Path, "/jobs/job-%d", &n)
			j.polls.Add(1)
			j.mu.Lock()
			at, ok := j.done[n]
			j.mu.Unlock()
			switch {
			case !ok:
				w.WriteHeader(http.StatusNotFound)
			case time.Now().Before(at):
				fmt.Fprintf(w, `{"state":"running","progress":%d}`, time.Now().UnixNano()%100)
			default:
				fmt.Fprintf(w, `{"state":"done","result":{"id":%d}}`, n)
			}
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/results/"):
			_, _ = fmt.Sscanf(r.URL.Path, "/results/%d", &n)
			j.mu.Lock()
			at, ok := j.done[n]
			j.mu.Unlock()
			if !ok || time.Now().Before(at) {
				j.notReady.Add(1)
				w.WriteHeader(http.StatusConflict)
				_, _ = io.WriteString(w, `{"detail":"not ready"}`)
				return
			}
			j.fetch.Add(1)
			_, _ = io.WriteString(w, `{"rows":[1,2,3]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(j.Close)
	return j
}

// jobClient starts a job and polls it every 100 ms until done, then
// fetches its result.
func jobClient(t *testing.T, base string) {
	var job struct{ ID string }
	a := apptest.Do(t, http.DefaultClient, "POST", base+"/jobs", "")
	if err := json.Unmarshal([]byte(a.Body), &job); err != nil {
		t.Fatal(err)
	}
	for {
		time.Sleep(100 * time.Millisecond)
		var st struct {
			State  string
			Result struct{ ID int }
		}
		a := apptest.Do(t, http.DefaultClient, "GET", base+"/jobs/"+job.ID, "")
		if err := json.Unmarshal([]byte(a.Body), &st); err != nil {
			t.Fatal(err)
		}
		if st.State == "done" {
			apptest.Do(t, http.DefaultClient, "GET", fmt.Sprintf("%s/results/%d", base, st.Result.ID), "")
			return
		}
	}
}

// TestPollUntilDone: a job polled until done, then its result fetched,
// replayed against a server whose jobs take 4 times longer, and one whose
// jobs are done at once: each loop polls until the live job is done, no
// result is fetched before (the server counts no 409), none is polled
// for nothing, and the loops are counted.
func TestPollUntilDone(t *testing.T) {
	j := newJobServer(t)
	sessions, _ := apptest.Record(t, j.URL, func(base string) { jobClient(t, base) })
	if len(sessions) != 1 || len(sessions[0].Exchanges) < 4 {
		t.Fatalf("recorded %d sessions", len(sessions))
	}
	recorded := len(sessions[0].Exchanges) - 2
	for _, tc := range []struct {
		name string
		took time.Duration
		per  func(float64) bool
	}{
		{"slower", 1200 * time.Millisecond, func(p float64) bool { return p > float64(recorded) }},
		{"at once", 0, func(p float64) bool { return p == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j.took = func() time.Duration { return tc.took }
			j.notReady.Store(0)
			j.polls.Store(0)
			j.fetch.Store(0)
			lib := replay.FromSessions(sessions)
			e, err := replay.New(j.URL, lib, replay.WithStopTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			const users = 10
			plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: users, RunTime: sessions[0].End() + 3*time.Second})
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.Play(t.Context(), plan, time.Now(), nil, "", report.RunParams{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Failures > 0 || res.Skipped > 0 || j.notReady.Load() > 0 {
				t.Errorf("%d failures, %d skipped; the server answered %d results not ready", res.Failures, res.Skipped, j.notReady.Load())
			}
			// The rows' fetch follows the loop's last answer: against the
			// slower jobs it waits for it, and says how long.
			if tc.took > 0 && (res.Waits == 0 || res.Waited.MaxMs < 100) {
				t.Errorf("%d requests waited for their causes, at most %.1f ms", res.Waits, res.Waited.MaxMs)
			}
			p := res.Polls
			per := float64(p.Polls) / float64(max(p.Loops, 1))
			t.Logf("%d loops, %.1f polls per loop (%d recorded), %d never done; %d requests waited, p99 %.1f ms", p.Loops, per, recorded, p.Unfinished, res.Waits, res.Waited.P99Ms)
			// Sessions the run's end cut fetch no result.
			if p.Loops < users || p.Unfinished > 0 || !tc.per(per) || j.fetch.Load() > p.Loops || j.fetch.Load() < p.Loops-users || j.polls.Load() != p.Polls {
				t.Errorf("%+v (%.1f per loop, %d recorded); the server counted %d polls, %d results", p, per, recorded, j.polls.Load(), j.fetch.Load())
			}
		})
	}
}

// TestCeleryImportsInChromium: a Django REST Framework app whose CSV
// imports run as Celery tasks: the page posts a file (202 with the
// task's status URL), polls the task every 250 ms until its state is
// SUCCESS, and fetches the rows of the import whose id only the SUCCESS
// answer gives. Recorded by Chromium, replayed as 30 users against tasks
// three times slower: every loop polls until its live task succeeded, so
// the app counts no rows asked for before (409) and refuses nothing.
func TestCeleryImportsInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewCeleryImports(t)
	const contexts, users = 5, 30
	visits, _ := recordVisits(t, app.URL, contexts, 0, func(u string) string { return "/imports/?u=" + u })
	checkVisitsOf(t, visits, contexts, map[string]int{"POST /accounts/login/": 1, "POST /api/imports/": 2, "POST /accounts/logout/": 1})
	if t.Failed() {
		return
	}
	app.Slowdown = 3
	app.Counts.Reset()
	sink := replayVisits(t, app.URL, visits, users, "username", "u{{user.index}}")
	loggedIn(t, app.Users(), users)
	for _, r := range apptest.CeleryRefusals() {
		if n := app.Counts.Get(r); n > 0 && (r != "login redirects" || n > app.Counts.Get("sessions")+users) {
			t.Errorf("the app counted %s", app.Counts.String())
			break
		}
	}
	// Visits three times slower than recorded: those begun late in the
	// run are cut by its end.
	if app.Counts.Get("rows served") < users {
		t.Errorf("the app served %d imports' rows: %s", app.Counts.Get("rows served"), app.Counts.String())
	}
	failures(t, sink)
}
