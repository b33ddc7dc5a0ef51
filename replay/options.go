package replay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Pacing says when a session's next request goes out.
type Pacing int

const (
	// Recorded sends each request at its recorded offset from the session's
	// start, whether or not earlier answers have come (open, within a
	// session).
	Recorded Pacing = iota
	// Think sends each request the recorded think gap after the answer to
	// the one before (closed, as Locust users are).
	Think
)

// ParsePacing reads "recorded" or "think".
func ParsePacing(s string) (Pacing, error) {
	switch s {
	case "recorded":
		return Recorded, nil
	case "think":
		return Think, nil
	}
	return 0, fmt.Errorf("pacing %q: want recorded or think", s)
}

func (p Pacing) String() string {
	if p == Think {
		return "think"
	}
	return "recorded"
}

type config struct {
	timeout      time.Duration
	stopTimeout  time.Duration
	pacing       Pacing
	sharedPool   bool
	connsPerUser int
	headers      [][2]string
	sourceIPs    []net.IP
	recorded     bool            // send the recorded cookies, no jar
	correlate    bool            // carry server-made values over
	replyIdle    time.Duration   // 0: each reply's own, from its recording
	abort        <-chan struct{} // closed: cut what is in flight now
	steer        *Steer          // changes the plan while the run plays
	noSketch     bool            // no sketch of the answers
	strictStatus bool            // every status of 400 or more fails
	users        *Users
	insecureTLS  bool
	dial         func(addr string) (net.Conn, error)
	origins      [][2]string // recorded origin, and where its requests go
}

func defaultConfig() config {
	return config{timeout: 30 * time.Second, stopTimeout: 30 * time.Second, connsPerUser: 6, correlate: true}
}

func (c *config) validate() error {
	var errs []error
	if c.timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %v: want a positive duration", c.timeout))
	}
	if c.stopTimeout < 0 {
		errs = append(errs, fmt.Errorf("stop timeout %v is negative", c.stopTimeout))
	}
	if c.replyIdle < 0 {
		errs = append(errs, fmt.Errorf("reply idle %v is negative", c.replyIdle))
	}
	if c.connsPerUser < 1 {
		errs = append(errs, fmt.Errorf("connections per user %d: want 1 or more", c.connsPerUser))
	}
	return errors.Join(errs...)
}

// Option configures an Engine.
type Option func(*config) error

// WithTimeout bounds each request; 30 seconds by default.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error { c.timeout = d; return nil }
}

// WithReplyIdle sets how long a streamed WebSocket reply that has begun may
// stay silent before it is taken as over. By default each reply gets ten
// times the longest gap between its recorded frames, from 1 to 10 seconds.
func WithReplyIdle(d time.Duration) Option {
	return func(c *config) error { c.replyIdle = d; return nil }
}

// WithAbort gives a channel whose close, once the run is stopping, cuts
// what is still in flight at once instead of after the stop timeout (a
// second Ctrl-C).
func WithAbort(ch <-chan struct{}) Option {
	return func(c *config) error { c.abort = ch; return nil }
}

// WithSteer lets s change the users of the engine's run while it plays
// (Steer.Set). An engine plays one steered run at a time.
func WithSteer(s *Steer) Option {
	return func(c *config) error { c.steer = s; return nil }
}

// WithStrictStatus counts every answer of status 400 or more as a failure,
// as Locust does, even where the recording had the same status.
func WithStrictStatus() Option {
	return func(c *config) error { c.strictStatus = true; return nil }
}

// WithStopTimeout is how long requests in flight get to finish once the run
// is over or stopped; 30 seconds by default.
func WithStopTimeout(d time.Duration) Option {
	return func(c *config) error { c.stopTimeout = d; return nil }
}

// WithPacing sets the pacing; Recorded by default.
func WithPacing(p Pacing) Option {
	return func(c *config) error { c.pacing = p; return nil }
}

// WithSharedPool makes all users share one pool of connections instead of
// each holding its own.
func WithSharedPool() Option {
	return func(c *config) error { c.sharedPool = true; return nil }
}

// WithConnsPerUser bounds each user's connections (6 by default, as
// browsers do).
func WithConnsPerUser(n int) Option {
	return func(c *config) error { c.connsPerUser = n; return nil }
}

// ParseHeader reads a header line, "Name: value", into WithHeader's
// option.
func ParseHeader(line string) (Option, error) {
	name, value, ok := strings.Cut(line, ":")
	if !ok {
		return nil, fmt.Errorf("header %q: want 'Name: value'", line)
	}
	return WithHeader(strings.TrimSpace(name), strings.TrimSpace(value)), nil
}

// WithHeader adds a header to every request, replacing a recorded one of the
// same name.
func WithHeader(name, value string) Option {
	return func(c *config) error {
		if name == "" || strings.ContainsAny(name, " :\r\n") || strings.ContainsAny(value, "\r\n") {
			return fmt.Errorf("header %q: %q is not a valid header", name, value)
		}
		c.headers = append(c.headers, [2]string{name, value})
		return nil
	}
}

// WithSourceIPs spreads new connections over these local addresses, for
// more ephemeral ports than one address has.
func WithSourceIPs(ips []net.IP) Option {
	return func(c *config) error {
		for _, ip := range ips {
			// A connection can only leave from an address of this machine.
			ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", net.JoinHostPort(ip.String(), "0"))
			if err != nil {
				return fmt.Errorf("source IPs: %s is not an address of this machine: %w", ip, err)
			}
			ln.Close()
		}
		c.sourceIPs = ips
		return nil
	}
}

// WithRecordedCookies makes every user send the cookies, CSRF echoes and
// cache validators as they were recorded, instead of keeping its own
// cookie jar: all users then present the recording's session. It is for
// targets that accept it (stateless signed sessions) until correlation
// carries server-made values over.
func WithRecordedCookies() Option {
	return func(c *config) error { c.recorded = true; return nil }
}

// WithoutCorrelation sends the values the server made during the
// recording (ids, tokens) as recorded, instead of the live ones.
func WithoutCorrelation() Option {
	return func(c *config) error { c.correlate = false; return nil }
}

// WithoutSketch leaves out the sketch of what the target answers
// (report.AnswerStats): a 2xx JSON answer is then not read whole unless
// something else wants its body.
func WithoutSketch() Option {
	return func(c *config) error { c.noSketch = true; return nil }
}

// WithUsers gives each virtual user a row of a users file: its values fill
// the placeholders and fields named after their columns.
func WithUsers(u *Users) Option {
	return func(c *config) error {
		if u == nil || u.Len() == 0 {
			return errors.New("no users")
		}
		c.users = u
		return nil
	}
}

// WithDial makes the engine open its connections with dial instead of TCP
// to the target's address: for other transports, and for tests.
func WithDial(dial func(addr string) (net.Conn, error)) Option {
	return func(c *config) error {
		if dial == nil {
			return errors.New("nil dial function")
		}
		c.dial = dial
		return nil
	}
}

// WithInsecureTLS skips the verification of an https target's certificate.
func WithInsecureTLS() Option {
	return func(c *config) error { c.insecureTLS = true; return nil }
}

// WithSourceIPRange is WithSourceIPs of the addresses ParseIPRange reads
// in s; the error is ParseIPRange's.
func WithSourceIPRange(s string) (Option, error) {
	ips, err := ParseIPRange(s)
	return WithSourceIPs(ips), err
}

// ParseIPRange reads "127.0.0.2-127.0.0.9" or a single address.
func ParseIPRange(s string) ([]net.IP, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a := net.ParseIP(strings.TrimSpace(lo)).To4()
	b := a
	if isRange {
		b = net.ParseIP(strings.TrimSpace(hi)).To4()
	}
	if a == nil || b == nil {
		return nil, fmt.Errorf("source IPs %q: want an IPv4 address or a range such as 127.0.0.2-127.0.0.9", s)
	}
	x, y := ip4(a), ip4(b)
	if y < x || y-x > 1<<16 {
		return nil, fmt.Errorf("source IPs %q: the range is reversed or larger than 65,536 addresses", s)
	}
	var out []net.IP
	for v := x; v <= y; v++ {
		out = append(out, net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)))
	}
	return out, nil
}

func ip4(ip net.IP) uint32 {
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

// WithOrigin sends the requests recorded to origin (scheme://host[:port],
// as Library.Origins names it) to url, an http or https URL, instead of
// to the engine's target. A forward proxy's trace names an origin in each
// request; the requests of origins given no WithOrigin go to the target.
func WithOrigin(origin, url string) Option {
	return func(c *config) error {
		if !strings.Contains(origin, "://") {
			return fmt.Errorf("origin %q: want scheme://host[:port]", origin)
		}
		c.origins = append(c.origins, [2]string{strings.ToLower(strings.TrimSuffix(origin, "/")), url})
		return nil
	}
}

// target is where requests go: the engine's target, or where WithOrigin
// sends an origin.
type target struct {
	url     *url.URL
	addr    string // host:port
	host    string // the Host header
	tls     bool
	tlsConf *tls.Config
	// names are the recorded host names whose requests go here: a cookie
	// set for a domain goes to the targets of the names in it.
	names []string
	// origins are the recorded origins whose requests go here: an Origin
	// or Referer naming one names this target.
	origins []string
}

func parseTarget(s string) (target, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return target{}, fmt.Errorf("target %q: want an http or https URL", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return target{}, fmt.Errorf("target %q: port %s: want 1 to 65535", s, p)
		}
	}
	t := target{url: u, host: u.Host, tls: u.Scheme == "https"}
	t.addr = u.Host
	if u.Port() == "" {
		if t.tls {
			t.addr += ":443"
		} else {
			t.addr += ":80"
		}
	}
	return t, nil
}
