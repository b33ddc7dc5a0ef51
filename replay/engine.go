package replay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// Sink receives every measurement of a run. It must be safe for concurrent
// use and must not keep the Sample. report.Recorder is one.
type Sink interface {
	Observe(s *report.Sample)
}

var _ Sink = (*report.Recorder)(nil)

// Engine replays a Library against a target. It is safe for concurrent use,
// though one Run at a time is what it is made for.
type Engine struct {
	cfg       config
	targetURL string // as given to New
	// targets are where requests go: targets[0] the engine's target, the
	// rest those of WithOrigin; siteOf maps a step's origin to its target.
	targets []target
	siteOf  []int
	names   [][]string // per target, the recorded host names it takes; nil for one
	lib     *Library
	shared  []*fasthttp.HostClient // with WithSharedPool, one per target
	dial    fasthttp.DialFunc

	active   atomic.Int64 // users running now
	inflight atomic.Int64 // requests in flight

	readers sync.Pool // *answerReader, lent per answer
	samples sync.Pool // *report.Sample, lent per request
	answers sync.Pool // *report.Answer, lent per answer sketched
	// readJSON counts, per endpoint, the 2xx JSON answers met, of which
	// the sketch reads a sample (sketchesBody).
	readJSON map[string]*atomic.Uint32
	bytes    sync.Pool             // *[1]byte, lent while a user waits for an answer
	corr     map[string]*corrCount // by rule; filled at New, read-only after
	fills    [][][]fill            // per script and step, with a users file
	// unfilled marks, per script and step, the requests that carry a
	// redacted value nothing fills; unfilledFailed counts those that failed.
	unfilled       [][]bool
	unfilledFailed atomic.Int64
	wires          sync.Pool // *[]byte: a request with the user's cookies added
	wireReaders    sync.Pool // *wireReader: a substituted request read back for the shared pool
	connsMu        sync.Mutex
	conns          map[net.Conn]struct{} // every open connection of the users
	cut            atomic.Bool
	// WebSocket figures: connections opened, messages sent and received.
	// retriedStale counts requests sent again on a new connection because
	// the server had closed the kept one.
	retriedStale atomic.Int64
	// pollLoops counts the poll loops played, polls their requests, and
	// pollsUnfinished the loops that reached their bound first.
	pollLoops, polls, pollsUnfinished atomic.Int64
	wsConns, wsSent, wsReceived       atomic.Int64 // the stop timeout passed: no new connection
	wsOpen                            atomic.Int64 // WebSockets open now
	raw                               [][][]byte   // raw[session][step]: the request as it goes on the wire
}

// New returns an Engine that replays lib against target (an http or https
// URL whose scheme and host replace the recorded ones).
func New(targetURL string, lib *Library, opts ...Option) (*Engine, error) {
	c := defaultConfig()
	var errs []error
	for _, o := range opts {
		errs = append(errs, o(&c))
	}
	t, err := parseTarget(targetURL)
	errs = append(errs, err, c.validate())
	if lib == nil || len(lib.scripts) == 0 {
		errs = append(errs, errors.New("no sessions to replay"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	targets, siteOf, err := sites(t, lib, &c)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	e := &Engine{cfg: c, targetURL: targetURL, targets: targets, siteOf: siteOf, lib: lib, dial: dialer(c.sourceIPs, c.timeout), conns: map[net.Conn]struct{}{}, corr: map[string]*corrCount{}}
	if c.users != nil {
		e.fills = make([][][]fill, len(lib.scripts))
		for i := range lib.scripts {
			e.fills[i] = c.users.sessionFills(&lib.scripts[i])
		}
	}
	e.unfilled = make([][]bool, len(lib.scripts))
	e.readJSON = map[string]*atomic.Uint32{}
	for i := range lib.scripts {
		sc := &lib.scripts[i]
		e.unfilled[i] = make([]bool, len(sc.steps))
		for j := range sc.steps {
			e.unfilled[i][j] = len(unfilledNames(sc, &sc.steps[j], c.users)) > 0
			if e.readJSON[sc.steps[j].endpoint] == nil {
				e.readJSON[sc.steps[j].endpoint] = new(atomic.Uint32)
			}
		}
	}
	if c.correlate {
		for i := range lib.scripts {
			for _, v := range lib.scripts[i].vars {
				if e.corr[v.rule] == nil {
					e.corr[v.rule] = &corrCount{}
				}
			}
		}
	}
	if c.dial != nil {
		e.dial = c.dial
	}
	e.readers.New = func() any { return newAnswerReader() }
	e.samples.New = func() any { return new(report.Sample) }
	e.answers.New = func() any { return new(report.Answer) }
	e.bytes.New = func() any { return new([1]byte) }
	e.wires.New = func() any { b := make([]byte, 0, 1024); return &b }
	e.wireReaders.New = func() any { return &wireReader{br: bufio.NewReader(nil)} }
	e.names = e.siteNames()
	e.raw = e.prepare()
	if c.sharedPool {
		for i := range e.targets {
			e.shared = append(e.shared, e.client(&e.targets[i], 1<<16))
		}
	}
	return e, nil
}

// sites makes the engine's targets: main first, then one per distinct URL
// of WithOrigin; siteOf maps each of the library's origins to its target.
func sites(main target, lib *Library, c *config) (targets []target, siteOf []int, err error) {
	targets = []target{main}
	siteOf = make([]int, max(1, len(lib.origins)))
	for _, m := range c.origins {
		k := slices.Index(lib.origins, m[0])
		if k <= 0 {
			return nil, nil, fmt.Errorf("origin %s: no request of the trace went to it", m[0])
		}
		t, err := parseTarget(m[1])
		if err != nil {
			return nil, nil, fmt.Errorf("origin %s: %w", m[0], err)
		}
		i := slices.IndexFunc(targets, func(o target) bool { return o.url.String() == t.url.String() })
		if i < 0 {
			i = len(targets)
			targets = append(targets, t)
		}
		siteOf[k] = i
	}
	for k := 1; k < len(lib.origins); k++ {
		t := &targets[siteOf[k]]
		t.origins = append(t.origins, lib.origins[k])
		_, auth, _ := strings.Cut(lib.origins[k], "://")
		host := auth
		if h, _, err := net.SplitHostPort(auth); err == nil {
			host = h
		}
		t.names = append(t.names, strings.Trim(host, "[]"))
	}
	for i := range targets {
		t := &targets[i]
		t.tlsConf = &tls.Config{InsecureSkipVerify: c.insecureTLS, ServerName: t.url.Hostname()} //nolint:gosec // only with WithInsecureTLS
	}
	return targets, siteOf, nil
}

// site returns the index of the target a step's request goes to.
func (e *Engine) site(st *step) int { return e.siteOf[st.origin] }

// Targets returns where the engine sends requests: its target first, then
// those of WithOrigin, each with the recorded origins it takes.
func (e *Engine) Targets() []Target {
	out := make([]Target, len(e.targets))
	for i, t := range e.targets {
		out[i] = Target{URL: t.url.String(), Origins: slices.Clone(t.origins)}
	}
	return out
}

// Target is where a run sends requests, and which recorded origins it
// takes (none named: the requests in origin form).
type Target struct {
	URL     string
	Origins []string
}

// dialer opens connections, from each of ips in turn when there are some.
func dialer(ips []net.IP, timeout time.Duration) fasthttp.DialFunc {
	if len(ips) == 0 {
		d := &net.Dialer{Timeout: timeout}
		return func(addr string) (net.Conn, error) { return d.Dial("tcp", addr) }
	}
	ds := make([]*net.Dialer, len(ips))
	for i, ip := range ips {
		ds[i] = &net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: ip}, Control: bindNoPort}
	}
	var next atomic.Uint64
	return func(addr string) (net.Conn, error) {
		return ds[next.Add(1)%uint64(len(ds))].Dial("tcp", addr)
	}
}

// bindNoPort asks Linux to choose the local port of a connection bound to
// a source address at connect time, when the whole 4-tuple is known, rather
// than at bind time (IP_BIND_ADDRESS_NO_PORT). Bound at bind time, each
// port serves one connection per address, and finding a free one among
// tens of thousands in use costs more with every connection.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// client returns a connection pool to t of at most conns connections.
func (e *Engine) client(t *target, conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                          t.addr,
		IsTLS:                         t.tls,
		TLSConfig:                     t.tlsConf,
		Dial:                          e.dial,
		MaxConns:                      conns,
		MaxIdleConnDuration:           90 * time.Second,
		ReadTimeout:                   e.cfg.timeout,
		WriteTimeout:                  e.cfg.timeout,
		MaxConnWaitTimeout:            e.cfg.timeout,
		StreamResponseBody:            true,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		ReadBufferSize:                4096,
		WriteBufferSize:               4096,
	}
}

// WebSocketStats returns the run's WebSocket figures so far.
func (e *Engine) WebSocketStats() report.WebSocketStats {
	return report.WebSocketStats{Connections: e.wsConns.Load(), FramesSent: e.wsSent.Load(), FramesReceived: e.wsReceived.Load()}
}

// Status is what a run is doing now.
type Status struct {
	Users    int64 // users running
	InFlight int64 // requests in flight
	Sockets  int64 // WebSockets open
}

// Status returns what the run is doing now.
func (e *Engine) Status() Status {
	return Status{Users: e.active.Load(), InFlight: e.inflight.Load(), Sockets: e.wsOpen.Load()}
}

// Run plays plan from start until its end, reporting every request to sink,
// and returns when every user has stopped. When ctx ends first, no new
// session starts, and requests in flight get the stop timeout to finish; the
// run is then over and Run returns ctx's error.
func (e *Engine) Run(ctx context.Context, plan *scheduler.Plan, start time.Time, sink Sink) error {
	end := start.Add(plan.Duration())
	// soft ends at the run's end (or ctx): no session starts after it.
	// hard ends stopTimeout later: whatever is still going is cut.
	soft, cancelSoft := context.WithDeadline(ctx, end)
	defer cancelSoft()
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	go func() {
		<-soft.Done()
		t := time.NewTimer(e.cfg.stopTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelHard()
			e.cutAll()
		case <-e.cfg.abort:
			// Asked to stop now (a second Ctrl-C): no stop timeout.
			cancelHard()
			e.cutAll()
		case <-hard.Done():
		}
	}()

	sc := e.cfg.steer
	if sc == nil {
		sc = &Steer{}
		sc.state.Store(&steerState{plan: plan}) // never changes
	} else {
		sc.begin(plan, start)
		defer sc.end()
	}
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	<-timer.C
	var spawned []bool
spawning:
	for {
		st := sc.state.Load()
		spawned = append(spawned, make([]bool, max(st.plan.TotalUsers()-len(spawned), 0))...)
		for _, s := range spawnOrder(st.plan, spawned, time.Since(start)) {
			if wait := time.Until(start.Add(s.at)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-st.changed:
					timer.Stop()
					continue spawning
				case <-soft.Done():
					break spawning
				}
			}
			spawned[s.k] = true
			wg.Go(func() { e.runUser(soft, hard, sc, s.k, start, sink) })
		}
		select {
		case <-st.changed: // nil: a plan that never changes
		case <-soft.Done():
			break spawning
		}
	}
	timer.Stop()
	wg.Wait()
	return ctx.Err()
}

type spawn struct {
	at time.Duration
	k  int
}

// spawnOrder returns when to start this shard's users of plan not
// spawned yet, at elapsed into the run: at the start of their first
// interval not over, in order.
func spawnOrder(plan *scheduler.Plan, spawned []bool, elapsed time.Duration) []spawn {
	users := plan.Users()
	order := make([]spawn, 0, len(users))
	for _, k := range users {
		if spawned[k] {
			continue
		}
		for _, iv := range plan.User(k).Active {
			if iv.Stop > elapsed {
				order = append(order, spawn{iv.Start, k})
				break
			}
		}
	}
	slices.SortStableFunc(order, func(a, b spawn) int { return int(a.at - b.at) })
	return order
}

// RetriedStale returns how many requests were sent again on a new
// connection because the server had closed the kept one.
func (e *Engine) RetriedStale() int64 { return e.retriedStale.Load() }
