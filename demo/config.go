package demo

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Latency is a latency distribution: log-normal, given by its median and its
// 99th percentile.
type Latency struct {
	Median time.Duration
	P99    time.Duration
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// sample draws a latency. Draws are capped at three times the P99 so that one
// unlucky draw cannot stall a test.
func (l Latency) sample(rng *rand.Rand, scale float64) time.Duration {
	if l.Median <= 0 {
		return 0
	}
	d := float64(l.Median)
	if l.P99 > l.Median {
		sigma := math.Log(float64(l.P99)/float64(l.Median)) / z99
		d *= math.Exp(sigma * rng.NormFloat64())
		d = min(d, 3*float64(l.P99))
	}
	return time.Duration(d * scale)
}

// ParseClassLatency reads a class's latency, CLASS=MEDIAN[:P99] (such as
// list=30ms:150ms), into its option.
func ParseClassLatency(s string) (Option, error) {
	class, dist, ok := strings.Cut(s, "=")
	if !ok || !slices.Contains(Classes(), class) {
		return nil, fmt.Errorf("%q: want CLASS=MEDIAN[:P99], such as list=30ms:150ms; classes: %s", s, strings.Join(Classes(), ", "))
	}
	l, err := ParseLatency(dist)
	if err != nil {
		return nil, err
	}
	return WithLatency(class, l), nil
}

// ParseLatency reads "MEDIAN" or "MEDIAN:P99", such as "30ms:150ms".
func ParseLatency(s string) (Latency, error) {
	med, p99, hasP99 := strings.Cut(s, ":")
	m, err := time.ParseDuration(med)
	if err != nil || m < 0 {
		return Latency{}, fmt.Errorf("latency %q: want MEDIAN or MEDIAN:P99, such as 30ms:150ms", s)
	}
	l := Latency{Median: m, P99: m}
	if hasP99 {
		p, err := time.ParseDuration(p99)
		if err != nil || p < m {
			return Latency{}, fmt.Errorf("latency %q: the P99 must be a duration no smaller than the median", s)
		}
		l.P99 = p
	}
	return l, nil
}

// Latency classes: which requests a latency distribution applies to.
const (
	ClassLogin  = "login"  // POST /api/auth/login/ and the other auth calls
	ClassList   = "list"   // GET /api/projects/
	ClassDetail = "detail" // GET /api/projects/{id}/
	ClassTools  = "tools"  // GET /api/tools/
	ClassSearch = "search" // GET /api/search/
	ClassToken  = "token"  // each token the chat agent streams
	ClassImport = "import" // POST /api/import/{kind}/ and job polls
	ClassJob    = "job"    // the time an import takes to be done
)

// Classes lists the latency classes.
func Classes() []string {
	return []string{ClassLogin, ClassList, ClassDetail, ClassTools, ClassSearch, ClassToken, ClassImport, ClassJob}
}

func defaultLatencies() map[string]Latency {
	return map[string]Latency{
		ClassLogin:  {40 * time.Millisecond, 120 * time.Millisecond},
		ClassList:   {30 * time.Millisecond, 150 * time.Millisecond},
		ClassDetail: {15 * time.Millisecond, 80 * time.Millisecond},
		ClassTools:  {10 * time.Millisecond, 40 * time.Millisecond},
		ClassSearch: {60 * time.Millisecond, 400 * time.Millisecond},
		ClassToken:  {25 * time.Millisecond, 60 * time.Millisecond},
		ClassImport: {50 * time.Millisecond, 200 * time.Millisecond},
		ClassJob:    {3 * time.Second, 3 * time.Second},
	}
}

// Faults are failures the backend injects, each in a share of requests, so
// that tests can see errors, resets and slow answers. The shares are exact
// over any run of requests: with ErrorRatio 0.1, exactly one request in ten
// fails.
type Faults struct {
	// ErrorRatio is the share of requests answered 500 or 503.
	ErrorRatio float64
	// ResetRatio is the share of requests whose connection is reset (TCP RST)
	// instead of answered.
	ResetRatio float64
	// SlowRatio is the share of requests delayed by Slow more.
	SlowRatio float64
	Slow      time.Duration
}

type config struct {
	rateLimit    float64 // requests per second per session; 0: none
	burst        int
	latencyScale float64
	latency      map[string]Latency
	busy         float64 // share of modelled latency spent computing (WithBusy)
	faults       Faults
	secret       []byte
	epoch        time.Time
	proc, procs  int
	build        build
}

func defaultConfig() config {
	return config{
		rateLimit:    20,
		burst:        20,
		latencyScale: 1,
		latency:      defaultLatencies(),
		procs:        1,
		build:        build{tokensScale: 1, seed: 1},
	}
}

func (c *config) validate() error {
	var errs []error
	if c.rateLimit < 0 || c.burst < 1 {
		errs = append(errs, fmt.Errorf("rate limit %g/s with burst %d: want a rate of 0 (none) or more and a burst of 1 or more", c.rateLimit, c.burst))
	}
	if c.latencyScale < 0 || math.IsNaN(c.latencyScale) || math.IsInf(c.latencyScale, 0) {
		errs = append(errs, fmt.Errorf("latency scale %g: want 0 or more", c.latencyScale))
	}
	for name, r := range map[string]float64{"error": c.faults.ErrorRatio, "reset": c.faults.ResetRatio, "slow": c.faults.SlowRatio} {
		if r < 0 || r > 1 || math.IsNaN(r) {
			errs = append(errs, fmt.Errorf("%s ratio %g: want a share in [0, 1]", name, r))
		}
	}
	if c.faults.Slow < 0 {
		errs = append(errs, fmt.Errorf("slow time %v is negative", c.faults.Slow))
	}
	if c.procs < 1 || c.proc < 0 || c.proc >= c.procs {
		errs = append(errs, fmt.Errorf("process %d of %d: want 0 <= index < count", c.proc, c.procs))
	}
	if c.secret != nil && len(c.secret) < 16 {
		errs = append(errs, errors.New("secret: want at least 16 bytes"))
	}
	return errors.Join(errs...)
}

// Option configures a Server.
type Option func(*config) error

// WithRateLimit limits each session to perSecond requests a second with
// bursts of burst (0: the rate, at least 1); requests over it get 429 with
// Retry-After. A perSecond of 0 turns limiting off. The default is 20 a
// second, bursts of 20.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(c *config) error {
		if burst == 0 {
			burst = max(1, int(perSecond))
		}
		c.rateLimit, c.burst = perSecond, burst
		return nil
	}
}

// WithLatencyScale multiplies every delay the backend adds: 2 makes a build
// twice as slow. The default is 1; 0 answers at once.
func WithLatencyScale(f float64) Option {
	return func(c *config) error {
		c.latencyScale = f
		return nil
	}
}

// WithLatency sets the latency distribution of one class (see Classes).
func WithLatency(class string, l Latency) Option {
	return func(c *config) error {
		if !slices.Contains(Classes(), class) {
			return fmt.Errorf("latency class %q: want one of %s", class, strings.Join(Classes(), ", "))
		}
		if l.Median < 0 || l.P99 < l.Median {
			return fmt.Errorf("latency class %q: median %v and P99 %v", class, l.Median, l.P99)
		}
		c.latency[class] = l
		return nil
	}
}

// WithFaults injects failures.
func WithFaults(f Faults) Option {
	return func(c *config) error {
		c.faults = f
		return nil
	}
}

// WithSecret sets the key that signs sessions, CSRF tokens and import ids.
// Processes that share a port must share it; by default each Server makes
// its own, so a restart invalidates old sessions, as a real backend's
// would after losing its session store.
func WithSecret(secret []byte) Option {
	return func(c *config) error {
		c.secret = slices.Clone(secret)
		return nil
	}
}

// WithProcess says that this Server is process index of count sharing a port,
// with epoch the shared origin of import ids (see package doc).
func WithProcess(index, count int, epoch time.Time) Option {
	return func(c *config) error {
		c.proc, c.procs, c.epoch = index, count, epoch
		return nil
	}
}

// NewSecret returns a random key for WithSecret.
func NewSecret() ([]byte, error) {
	b := make([]byte, 32)
	_, err := crand.Read(b)
	return b, err
}
