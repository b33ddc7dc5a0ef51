package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Cookie and header names, as Django names them.
const (
	SessionCookie = "sessionid"
	CSRFCookie    = "csrftoken"
	CSRFHeader    = "X-CSRFToken"
)

// Server is the demo backend. It is an http.Handler; Serve runs it on a
// listener. A Server is safe for concurrent use.
type Server struct {
	cfg     config
	keys    *keys
	cat     *catalogue
	limit   *limiter
	metrics *metrics
	mux     *http.ServeMux
	up      websocket.Upgrader

	errors, resets, slows every

	procHeader []string // X-Demo-Process: which process answered

	// The build changes: by endpoint (none for an endpoint they leave as
	// it is), to JSON answers (nil for none), and the tokens' counter (nil
	// when the chat's replies are left as they are).
	changes       map[string]*endpointChange
	edits         []fieldEdit
	tokensChanged prometheus.Counter

	rngPool sync.Pool     // *rand.Rand, so latency draws need no lock
	spun    atomic.Uint64 // what busy answers computed (see spin)

	// closing is closed when Serve begins to shut down, which ends the
	// WebSocket handlers that http.Server.Shutdown does not wait for.
	closing   chan struct{}
	closeOnce sync.Once
	sockets   sync.WaitGroup
}

// New returns a demo backend configured by opts.
func New(opts ...Option) (*Server, error) {
	c := defaultConfig()
	var errs []error
	for _, o := range opts {
		errs = append(errs, o(&c))
	}
	if err := errors.Join(append(errs, c.validate())...); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if c.secret == nil {
		var err error
		if c.secret, err = NewSecret(); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	if c.epoch.IsZero() {
		c.epoch = time.Now()
	}
	cat, err := newCatalogue()
	if err != nil {
		return nil, fmt.Errorf("demo: catalogue: %w", err)
	}
	s := &Server{
		cfg:     c,
		keys:    &keys{secret: c.secret, epoch: c.epoch, proc: uint64(c.proc), procs: uint64(c.procs)},
		cat:     cat,
		limit:   newLimiter(c.rateLimit, c.burst),
		metrics: newMetrics(),
		mux:     http.NewServeMux(),
		closing: make(chan struct{}),
		up: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			// The demo serves any origin; a real backend would check it.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	s.procHeader = []string{strconv.Itoa(c.proc)}
	s.errors.ratio = c.faults.ErrorRatio
	s.resets.ratio = c.faults.ResetRatio
	s.slows.ratio = c.faults.SlowRatio
	s.rngPool.New = func() any { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }
	s.changes, s.edits = newChanges(&c.build, s.metrics)
	if f := c.build.tokensScale; f != 1 {
		s.tokensChanged = s.metrics.changes.WithLabelValues("tokens-scale", strconv.FormatFloat(f, 'g', -1, 64))
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	for _, rt := range routeTable() {
		s.handle(rt)
	}
	s.handle(route{pattern: "/", fn: func(_ *Server, w http.ResponseWriter, _ *http.Request, _ *call) {
		writeJSON(w, http.StatusNotFound, `{"detail":"Not found."}`)
	}})
}

// route is an endpoint the backend serves.
type route struct {
	pattern string // the method and path pattern the mux matches: GET /api/projects/{id}/
	class   string // the latency class the middleware waits before fn; "" for none
	tokens  bool   // fn waits a ClassToken latency for each token it streams
	fn      func(*Server, http.ResponseWriter, *http.Request, *call)
}

// routeTable lists the endpoints the backend serves, /metrics and the
// catch-all 404 aside.
func routeTable() []route {
	return []route{
		{"POST /api/auth/login/", ClassLogin, false, (*Server).login},
		{"POST /api/auth/logout/", ClassLogin, false, (*Server).logout},
		{"GET /api/auth/me/", ClassLogin, false, (*Server).me},
		{"GET /api/projects/", ClassList, false, (*Server).projects},
		{"GET /api/projects/{id}/", ClassDetail, false, (*Server).project},
		{"GET /api/tools/", ClassTools, false, (*Server).tools},
		{"GET /api/search/", ClassSearch, false, (*Server).search},
		{"POST /api/chat/", "", true, (*Server).chatPost},
		{"GET /ws/chat/", "", true, (*Server).chatSocket},
		{"POST /api/import/{kind}/", ClassImport, false, (*Server).startImport},
		{"GET /api/import/jobs/{id}/", ClassImport, false, (*Server).job},
		{"GET /visit", "", false, (*Server).visit},
	}
}

// call is what the middleware learned about a request.
type call struct {
	session string // the session cookie's value, when it is valid
	user    string
	change  *endpointChange // the build changes of the endpoint; nil for none
}

// recorder notes the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
	edits  []fieldEdit // the build's changes to JSON answers; nil for none
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack hands the connection to the WebSocket upgrader, which looks for
// http.Hijacker itself. A hijacked request counts as switching protocols.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// handle registers rt behind the middleware: metrics, injected faults, the
// session, rate limiting, the CSRF check of unsafe methods, the latency of
// its class, and the build changes of the endpoint (failures; a slower
// latency; edited JSON answers, in writeJSON).
func (s *Server) handle(rt route) {
	pattern, class, fn := rt.pattern, rt.class, rt.fn
	change := s.changes[pattern] // nil when the build leaves the endpoint as it is
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, edits: s.edits}
		rec.Header()["X-Demo-Process"] = s.procHeader
		defer func() {
			code := rec.status // 0 when the connection was reset
			if code == http.StatusSwitchingProtocols || r.Header.Get("Upgrade") != "" {
				// A WebSocket's duration is the connection's life, not a
				// request's: count it, but keep it out of latencies.
				s.metrics.requests.WithLabelValues(r.Method, pattern, strconv.Itoa(code)).Inc()
				return
			}
			s.metrics.requests.WithLabelValues(r.Method, pattern, strconv.Itoa(code)).Inc()
			s.metrics.duration.WithLabelValues(r.Method, pattern).Observe(time.Since(start).Seconds())
		}()
		if s.resets.fire() {
			s.metrics.faults.WithLabelValues("reset").Inc()
			reset(rec)
			return
		}
		if s.errors.fire() {
			s.metrics.faults.WithLabelValues("error").Inc()
			code := http.StatusInternalServerError
			if s.errors.n.Load()%2 == 0 {
				code = http.StatusServiceUnavailable
			}
			writeJSON(rec, code, `{"detail":"injected failure"}`)
			return
		}
		if s.slows.fire() {
			s.metrics.faults.WithLabelValues("slow").Inc()
			if !s.sleep(r.Context(), s.cfg.faults.Slow) {
				s.interrupted(rec)
				return
			}
		}
		c := &call{}
		if ck, err := r.Cookie(SessionCookie); err == nil {
			if user, err := s.keys.session(ck.Value); err == nil {
				c.session, c.user = ck.Value, user
			}
		}
		if c.session != "" {
			if ok, retry := s.limit.allow(c.session, start); !ok {
				rec.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
				writeJSON(rec, http.StatusTooManyRequests, `{"detail":"Request was throttled."}`)
				return
			}
		}
		if unsafe(r.Method) && pattern != "POST /api/auth/login/" {
			if c.session == "" {
				writeJSON(rec, http.StatusForbidden, `{"detail":"Authentication credentials were not provided."}`)
				return
			}
			ck, err := r.Cookie(CSRFCookie)
			if err != nil || ck.Value != s.keys.csrf(c.session) || r.Header.Get(CSRFHeader) != ck.Value {
				writeJSON(rec, http.StatusForbidden, `{"detail":"CSRF Failed: CSRF token missing or incorrect."}`)
				return
			}
		}
		if class != "" {
			d := s.draw(class)
			if change != nil {
				d = change.slowed(d)
				change.countSlow()
			}
			if s.cfg.busy > 0 {
				b := time.Duration(float64(d) * s.cfg.busy)
				s.spun.Add(spin(b))
				s.metrics.busy.Add(b.Seconds())
				d -= b
			}
			if !s.sleep(r.Context(), d) {
				s.interrupted(rec)
				return
			}
		}
		if change.fail() {
			writeJSON(rec, http.StatusInternalServerError, `{"detail":"A server error occurred."}`)
			return
		}
		c.change = change
		fn(s, rec, r, c)
	})
}

func unsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// draw samples the latency of class, scaled.
func (s *Server) draw(class string) time.Duration {
	rng, _ := s.rngPool.Get().(*rand.Rand)
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	d := s.cfg.latency[class].sample(rng, s.cfg.latencyScale)
	s.rngPool.Put(rng)
	return d
}

// sleep waits d unless ctx ends or the server closes first, and reports
// whether it waited the whole time.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// interrupted answers a request whose wait was cut short: 503 when the
// server is shutting down; nothing when the client has gone.
func (s *Server) interrupted(w http.ResponseWriter) {
	select {
	case <-s.closing:
		w.Header().Set("Connection", "close")
		writeJSON(w, http.StatusServiceUnavailable, `{"detail":"shutting down"}`)
	default:
	}
}

// reset aborts the connection with a TCP RST instead of an answer.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if rec, ok := w.(*recorder); ok {
		rec.status = 0 // reset: no answer at all
	}
	if err != nil {
		// HTTP/2 or a test recorder: the closest thing is to abort the
		// handler, which the server turns into a reset stream or close.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func writeJSON(w http.ResponseWriter, code int, body string) {
	writeJSONBytes(w, code, []byte(body))
}

// writeJSONBytes answers body, edited first by the build's changes to JSON
// answers when there are any: every JSON answer is written here.
func writeJSONBytes(w http.ResponseWriter, code int, body []byte) {
	if rec, ok := w.(*recorder); ok && rec.edits != nil {
		body = editJSON(body, rec.edits)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// ServeHTTP answers r.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers connections from ln until ctx ends, then stops accepting,
// gives requests in flight up to grace to finish, closes WebSockets, and
// returns. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.close()
		s.sockets.Wait()
		return err
	case <-ctx.Done():
	}
	s.close()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	s.sockets.Wait()
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

func (s *Server) close() { s.closeOnce.Do(func() { close(s.closing) }) }
