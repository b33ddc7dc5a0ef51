package capture

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"time"
)

type config struct {
	cookies     []string
	idle        time.Duration
	maxSession  time.Duration
	rules       *Rules
	redact      bool
	secretHeads []string // more header names whose values are secrets
	journalPath string   // where open sessions' exchanges are kept; "" for none
	redactKey   []byte
	bodyLimit   int
	buffer      int64
	flushEvery  time.Duration
	grace       time.Duration
	insecureTLS bool
	errorLog    *log.Logger
	eventLoop   bool
	hostHeader  HostHeader
	loopBacklog int           // bytes a loop connection's receiver may leave untaken
	partLimits  *partLimits   // when long sessions are written in parts; nil: the defaults
	clientIdle  time.Duration // a keep-alive client connection with no request
	headTimeout time.Duration // from a request's first byte to its last header

	// A forward proxy's.
	ca          *CA
	hosts       []string // in scope, lower-cased; "*.example.com" for its subdomains
	proxyAuth   string   // user:pass clients must present; "" for none
	advice      Advice
	source      string // an import's: what saw its exchanges (see Import); "" for the relays
	targetRoots *x509.CertPool
	dialer      *net.Dialer // nil: the capture's own
}

func defaultConfig() config {
	return config{
		cookies:     DefaultSessionCookies(),
		idle:        30 * time.Minute,
		maxSession:  4 * time.Hour,
		rules:       DefaultRules(),
		redact:      true,
		bodyLimit:   1 << 20,
		buffer:      512 << 20,
		flushEvery:  time.Second,
		grace:       10 * time.Second,
		errorLog:    log.New(io.Discard, "", 0),
		loopBacklog: 64 << 20,
		clientIdle:  5 * time.Minute,
		headTimeout: 30 * time.Second,
		advice:      DefaultAdvice(),
	}
}

func (c *config) validate() error {
	var errs []error
	if len(c.cookies) == 0 {
		errs = append(errs, errors.New("no session cookie names"))
	}
	if c.idle <= 0 || c.maxSession <= 0 {
		errs = append(errs, fmt.Errorf("session idle %v and max session %v: want both positive", c.idle, c.maxSession))
	}
	if c.bodyLimit < 0 || c.buffer <= 0 {
		errs = append(errs, fmt.Errorf("body limit %d and buffer %d: want 0 or more, and more than 0", c.bodyLimit, c.buffer))
	}
	if c.flushEvery <= 0 || c.grace < 0 {
		errs = append(errs, fmt.Errorf("flush interval %v and grace %v: want a positive interval", c.flushEvery, c.grace))
	}
	if err := c.rules.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("rules: %w", err))
	}
	return errors.Join(errs...)
}

// Option configures a Capture.
type Option func(*config) error

// WithSessionCookies sets the names of the cookies that key sessions;
// DefaultSessionCookies when not given.
func WithSessionCookies(names ...string) Option {
	return func(c *config) error {
		c.cookies = slices.Clone(names)
		return nil
	}
}

// WithSessionIdle ends a session after d without traffic; 30 minutes by
// default.
func WithSessionIdle(d time.Duration) Option {
	return func(c *config) error { c.idle = d; return nil }
}

// WithMaxSession ends a session d after it began, even if it goes on; the
// rest becomes a new session. 4 hours by default.
func WithMaxSession(d time.Duration) Option {
	return func(c *config) error { c.maxSession = d; return nil }
}

// WithRules sets the profile rules; DefaultRules when not given.
func WithRules(r *Rules) Option {
	return func(c *config) error {
		if r == nil {
			return errors.New("nil rules")
		}
		c.rules = r
		return nil
	}
}

// WithKeepSecrets turns redaction off: credentials are recorded as they are.
func WithKeepSecrets() Option {
	return func(c *config) error { c.redact = false; return nil }
}

// WithRedactHeaders redacts the values of these headers too (case does not
// matter), besides Authorization, cookies and the headers whose names end
// in -key, -token or -secret.
func WithRedactHeaders(names ...string) Option {
	return func(c *config) error {
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, " :\r\n") {
				return fmt.Errorf("redact header %q: not a header name", n)
			}
			c.secretHeads = append(c.secretHeads, strings.ToLower(n))
		}
		return nil
	}
}

// WithJournal keeps the finished exchanges of sessions still open in a
// journal at path (the trace's path and JournalSuffix), written every flush
// interval and removed by a clean stop, so that a capture killed without
// warning loses at most the last interval: Repair folds the journal into
// the trace. A journal already at path (a capture that did not finish) is
// refused, with ErrJournal.
func WithJournal(path string) Option {
	return func(c *config) error { c.journalPath = path; return nil }
}

// WithRedactionKey sets the key of the placeholders' hashes, so that several
// captures give a secret the same placeholder. A random key by default.
func WithRedactionKey(key []byte) Option {
	return func(c *config) error { c.redactKey = slices.Clone(key); return nil }
}

// WithBodyLimit keeps at most n bytes of each body and WebSocket message;
// longer ones keep their size and SHA-256. 1 MiB by default.
func WithBodyLimit(n int) Option {
	return func(c *config) error { c.bodyLimit = n; return nil }
}

// WithBuffer bounds the bytes held (bodies, headers, records) for sessions
// not yet written: past half of it the sessions hand on what they finished
// as parts; past it, exchanges are dropped and counted rather than delay
// the proxy. 512 MiB by default.
func WithBuffer(n int64) Option {
	return func(c *config) error { c.buffer = n; return nil }
}

// WithFlushInterval sets how often finished sessions are written and
// flushed: the most a killed capture loses. One second by default.
func WithFlushInterval(d time.Duration) Option {
	return func(c *config) error { c.flushEvery = d; return nil }
}

// WithGrace sets how long requests in flight get to finish when the capture
// stops; 10 seconds by default.
func WithGrace(d time.Duration) Option {
	return func(c *config) error { c.grace = d; return nil }
}

// WithEventLoop serves plain-HTTP clients of a plain-HTTP target on event
// loops rather than a goroutine per connection; see loop.go for what it
// does not do yet.
func WithEventLoop() Option {
	return func(c *config) error { c.eventLoop = true; return nil }
}

// HostHeader says which Host a reverse proxy's backend sees (see
// WithHostHeader).
type HostHeader int

// Host headers.
const (
	// HostAuto keeps the client's Host for a target on this machine
	// (a loopback address or localhost) and names the target otherwise.
	HostAuto HostHeader = iota
	// HostClient keeps the Host the client sent, and Origin and Referer as
	// they are: the backend sees the proxy's name wherever it looks (Host,
	// X-Forwarded-Host, Origin), as behind nginx with proxy_set_header
	// Host $host, so that its absolute URLs lead back through the proxy
	// and its origin checks hold whichever header it trusts.
	HostClient
	// HostTarget sends the target's own name as Host (a virtual host that
	// routes by it), and an Origin or Referer that names the proxy names
	// the target instead; X-Forwarded-Host still says the proxy's. A
	// backend that trusts X-Forwarded-Host (Rails, Laravel and Symfony
	// behind trusted proxies) then sees an Origin that is not its own.
	HostTarget
)

// ParseHostHeader reads "auto", "client" or "target".
func ParseHostHeader(s string) (HostHeader, error) {
	switch s {
	case "auto", "":
		return HostAuto, nil
	case "client":
		return HostClient, nil
	case "target":
		return HostTarget, nil
	}
	return HostAuto, fmt.Errorf("host header %q: want auto, client or target", s)
}

// WithHostHeader sets which Host a reverse proxy's backend sees: HostAuto
// by default.
func WithHostHeader(h HostHeader) Option {
	return func(c *config) error { c.hostHeader = h; return nil }
}

// WithInsecureTarget skips the verification of an https target's
// certificate, for test backends with self-signed ones.
func WithInsecureTarget() Option {
	return func(c *config) error { c.insecureTLS = true; return nil }
}

// WithErrorLog sets where the proxy logs what it cannot record elsewhere;
// nowhere by default (failures are recorded in the trace and counted).
func WithErrorLog(l *log.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("nil error log")
		}
		c.errorLog = l
		return nil
	}
}

func randomKey() ([]byte, error) {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	return k, err
}

// WithCA sets the CA a forward proxy signs the certificates it shows
// clients with; a forward proxy needs one.
func WithCA(ca *CA) Option {
	return func(c *config) error {
		if ca == nil {
			return errors.New("nil CA")
		}
		c.ca = ca
		return nil
	}
}

// WithHosts records only requests to these hosts (a name, an IP address, or
// *.example.com for every subdomain of example.com); a forward proxy
// tunnels CONNECTs to other hosts byte for byte, without decrypting them,
// and relays their plain requests without recording them. Every host by
// default.
func WithHosts(patterns ...string) Option {
	return func(c *config) error {
		for _, p := range patterns {
			p = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(p), "."))
			name := strings.TrimPrefix(p, "*.")
			if name == "" || strings.ContainsAny(name, "*/:@ ") && net.ParseIP(strings.Trim(name, "[]")) == nil {
				return fmt.Errorf("host %q: want a name (api.example.com), *.example.com or an IP address", p)
			}
			if strings.HasPrefix(p, "*.") {
				p = p[1:] // ".example.com": a suffix
			}
			c.hosts = append(c.hosts, strings.Trim(p, "[]"))
		}
		return nil
	}
}

// WithProxyAuth makes a forward proxy ask its clients for these Basic
// credentials (407 without them), for a capture that listens beyond
// loopback.
func WithProxyAuth(user, password string) Option {
	return func(c *config) error {
		if user == "" || strings.Contains(user, ":") {
			return fmt.Errorf("proxy user %q: want a name without a colon", user)
		}
		c.proxyAuth = user + ":" + password
		return nil
	}
}

// WithTargetRoots verifies https backends and origins against these roots
// instead of the system's.
func WithTargetRoots(roots *x509.CertPool) Option {
	return func(c *config) error { c.targetRoots = roots; return nil }
}

// WithDialer opens the connections to backends and origins with d (its
// timeout bounded by the capture's 10 s): a local address to leave from, or
// a Control that refuses some addresses.
func WithDialer(d *net.Dialer) Option {
	return func(c *config) error {
		if d == nil {
			return errors.New("nil dialer")
		}
		c.dialer = d
		return nil
	}
}

// Advice is what a forward proxy tells its clients, and its error log,
// about how to use it, in the words of the face that runs the capture
// (its flags); the defaults name no setting.
type Advice struct {
	// ProxyAuth is the body of the answer 407 to a client without the
	// proxy's credentials.
	ProxyAuth string
	// NotAProxy is the body of the answer 400 to a request for a path
	// rather than an absolute URL: the client took the forward proxy for
	// a server.
	NotAProxy string
	// TLSRefused follows, in the error log, a client's refusal of the
	// certificate the proxy made for a host.
	TLSRefused string
}

// DefaultAdvice is the advice of a capture not told WithAdvice.
func DefaultAdvice() Advice {
	return Advice{
		ProxyAuth:  "thrive capture: proxy authentication required\n",
		NotAProxy:  "thrive capture: this is a forward proxy: ask for absolute URLs, as of a proxy (curl -x)\n",
		TLSRefused: "does the client trust the capture's CA? a client that pins its certificates can be left out of the hosts recorded",
	}
}

// WithAdvice sets what a forward proxy tells its clients and its error
// log (Advice); an empty field keeps the default's.
func WithAdvice(a Advice) Option {
	return func(c *config) error {
		d := &c.advice
		for _, f := range [][2]*string{{&d.ProxyAuth, &a.ProxyAuth}, {&d.NotAProxy, &a.NotAProxy}, {&d.TLSRefused, &a.TLSRefused}} {
			if *f[1] != "" {
				*f[0] = *f[1]
			}
		}
		return nil
	}
}
