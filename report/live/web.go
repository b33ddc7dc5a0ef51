package live

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/thrive-loadtest/thrive/report"
)

//go:embed web
var webFiles embed.FS

// Frame is what the live page shows at one moment of a run.
type Frame struct {
	// View is the run's figures so far as report.ViewJSON gives them
	// (from report.Recorder.Peek, the criteria with their verdict now);
	// at the end, the result file's.
	View json.RawMessage `json:"view"`
	// Summary is the table of endpoints and profiles, then the totals,
	// as the terminal prints them (report.WriteSummary).
	Summary string `json:"summary"`
	// Title names the run: its trace and target.
	Title string `json:"title"`
	// Users run and Sockets are open now.
	Users   int64 `json:"users"`
	Sockets int64 `json:"sockets"`
	// Elapsed and RunTime are how long the run has played and is
	// planned to, in seconds.
	Elapsed float64 `json:"elapsed_s"`
	RunTime float64 `json:"run_time_s"`
	// Done says the run is over; StoppedBy what stopped it early, if
	// anything did; Error what went wrong, if anything did.
	Done      bool   `json:"done"`
	StoppedBy string `json:"stopped_by,omitempty"`
	Error     string `json:"error,omitempty"`
	// Files are the run's files the page offers to download (at the
	// end: the result file, the Locust CSVs, the HTML report).
	Files []Download `json:"files,omitempty"`
	// Waiting says the run waits for the page's Start (View is then
	// empty). Form is what the page's form of the run shows: before the
	// start, the run the flags give; while the run plays, its users and
	// spawn rate now, which the form changes; nil when neither is
	// offered.
	Waiting bool  `json:"waiting,omitempty"`
	Form    *Form `json:"form,omitempty"`
}

// Form is the page's form of a run: users and spawn rate, and before the
// start its run time and profile mix too.
type Form struct {
	Users     int     `json:"users"`
	SpawnRate float64 `json:"spawn_rate"`
	RunTime   string  `json:"run_time,omitempty"`
	Mix       string  `json:"mix,omitempty"`
	// Fixed says the run's shape is not the form's to choose (stages, a
	// ladder): the page offers Start alone.
	Fixed bool `json:"fixed,omitempty"`
}

// A Download is a file the page offers, at /files/Name.
type Download struct {
	Name string `json:"name"`
	Path string `json:"-"`
}

// Web is a run's live page: the page and its scripts (embedded: nothing
// comes from the network), a stream of server-sent events that carries
// each Frame given to Publish, a Stop control, and the run's files to
// download. It reads only what Publish is given, once a second, so that
// it adds nothing to the work of a request. It is safe for concurrent
// use.
type Web struct {
	stop func()
	quit chan struct{}

	mu       sync.Mutex
	users    func(users int, rate float64) error // the users control, while offered
	start    func(Form) error                    // the Start control, while offered
	quitOnce sync.Once
	last     []byte
	done     bool
	files    map[string]string
	subs     map[chan []byte]struct{}
	closing  chan struct{} // closed when the server shuts down
}

// NewWeb returns a Web whose Stop control calls stop while the run
// plays (stop must return at once: cancel the run's context), and after
// its end closes Quit.
func NewWeb(stop func()) *Web {
	return &Web{stop: stop, quit: make(chan struct{}), subs: map[chan []byte]struct{}{}, closing: make(chan struct{})}
}

// OnUsers offers the page's control of users and spawn rate while the
// run plays: f makes the change, or says why it cannot. nil withdraws it.
func (w *Web) OnUsers(f func(users int, rate float64) error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.users = f
}

// OnStart offers the page's Start: f starts the run the form gives, or
// says why it cannot. nil withdraws it.
func (w *Web) OnStart(f func(Form) error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.start = f
}

// Ended says whether the last frame published was the run's end.
func (w *Web) Ended() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done
}

// Quit is closed when the page's Stop is pressed after the run's end:
// whoever keeps the page up for its downloads may stop waiting.
func (w *Web) Quit() <-chan struct{} { return w.quit }

// Watched says whether a page is open: a frame no one would see need
// not be made.
func (w *Web) Watched() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.subs) > 0
}

// Publish sends f to every page open, and to every page that opens
// later until the next Publish. The error says when f cannot be encoded.
func (w *Web) Publish(f *Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("live page: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last, w.done = b, f.Done
	w.files = map[string]string{}
	for _, d := range f.Files {
		w.files[d.Name] = d.Path
	}
	for ch := range w.subs {
		send(ch, b)
	}
	return nil
}

// send puts b in ch (of capacity 1), in place of a frame the page has
// not taken yet: a slow page skips frames, it never holds up Publish.
func send(ch chan []byte, b []byte) {
	select {
	case ch <- b:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	ch <- b // only Publish sends, under mu: there is room now
}

// controlHeader is the header a control (Stop, Start, a change of users)
// must carry.
const controlHeader = "X-Thrive-Control"

// Handler returns the handler of the page: / (the page and its assets),
// /events (the frames, as server-sent events), POST /stop, POST /start
// and POST /users (a Form as JSON), and /files/NAME.
func (w *Web) Handler() (http.Handler, error) {
	assets, err := fs.Sub(webFiles, "web")
	if err != nil {
		return nil, fmt.Errorf("live page: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(assets))
	mux.HandleFunc("GET /chart.js", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = rw.Write(report.ChartJS())
	})
	mux.HandleFunc("GET /events", w.events)
	mux.HandleFunc("POST /stop", w.stopped)
	mux.HandleFunc("POST /start", w.control(func() (func(Form) error, string) { return w.start, "the run is not waiting for a start" }))
	mux.HandleFunc("POST /users", w.control(func() (func(Form) error, string) {
		if w.users == nil {
			return nil, "the run is not playing, or its users are not the page's to change"
		}
		users := w.users
		return func(f Form) error { return users(f.Users, f.SpawnRate) }, ""
	}))
	mux.HandleFunc("GET /files/{name}", w.file)
	return mux, nil
}

// Serve listens on addr (host:port) and serves the page until Close.
// The error says when addr cannot be listened on.
func (w *Web) Serve(ctx context.Context, addr string) (*Server, error) {
	h, err := w.Handler()
	if err != nil {
		return nil, err
	}
	s, err := serve(ctx, addr, "live page", h)
	if err != nil {
		return nil, err
	}
	// A stream of events is never idle: end them, so that Shutdown need
	// not wait for them.
	s.srv.RegisterOnShutdown(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		select {
		case <-w.closing:
		default:
			close(w.closing)
		}
	})
	return s, nil
}

// events streams the frames to one page, the last one first.
func (w *Web) events(rw http.ResponseWriter, r *http.Request) {
	ch := make(chan []byte, 1)
	w.mu.Lock()
	if w.last != nil {
		ch <- w.last
	}
	w.subs[ch] = struct{}{}
	closing := w.closing
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.subs, ch)
		w.mu.Unlock()
	}()
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(rw)
	for {
		select {
		case b := <-ch:
			if _, err := fmt.Fprintf(rw, "data: %s\n\n", b); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-closing:
			return
		}
	}
}

// guarded reports whether r carries the header the page's script sends,
// else refuses it: another site's page in the same browser cannot send
// it without the permission (CORS) this server never gives, so it cannot
// work the controls.
func guarded(rw http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get(controlHeader) == "" {
		http.Error(rw, r.URL.Path+": the page's own script sends "+controlHeader, http.StatusForbidden)
		return false
	}
	return true
}

// control is a control that takes a Form: which reads, under the lock,
// what the control does now (nil: not offered, and why).
func (w *Web) control(which func() (func(Form) error, string)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		if !guarded(rw, r) {
			return
		}
		var f Form
		if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 4096)).Decode(&f); err != nil {
			http.Error(rw, fmt.Sprintf("%s: want a form as JSON: %v", r.URL.Path, err), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		do, why := which()
		w.mu.Unlock()
		if do == nil {
			http.Error(rw, why, http.StatusConflict)
			return
		}
		if err := do(f); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	}
}

// stopped is the Stop control: it stops the run, or once it is over,
// closes Quit.
func (w *Web) stopped(rw http.ResponseWriter, r *http.Request) {
	if !guarded(rw, r) {
		return
	}
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done {
		w.quitOnce.Do(func() { close(w.quit) })
	} else if w.stop != nil {
		w.stop()
	}
	rw.WriteHeader(http.StatusNoContent)
}

// file serves one of the run's files as a download.
func (w *Web) file(rw http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	w.mu.Lock()
	path, ok := w.files[name]
	w.mu.Unlock()
	if !ok {
		http.Error(rw, fmt.Sprintf("no file %q: the run's files are offered once it is over", name), http.StatusNotFound)
		return
	}
	rw.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", filepath.Base(name)))
	http.ServeFile(rw, r, path)
}
