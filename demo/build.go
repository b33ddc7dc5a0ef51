package demo

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Build changes make the backend behave like a changed build of itself, so
// that a comparison of two runs, one against the backend as it is and one
// against a changed one, can be held to find exactly the change made:
//
//   - WithDropField and WithRenameField edit every JSON answer that has the
//     field at a path;
//   - WithFailRatio makes an endpoint answer 500 to a share of its requests;
//   - WithSlow multiplies an endpoint's modelled latency;
//   - WithTokensScale makes the chat's WebSocket replies longer or shorter.
//
// Endpoints are named as the server registers its routes: the method and
// the path pattern, such as "GET /api/projects/{id}/" (see Endpoints). A
// field's path is $ followed by .KEY for an object's member and [] for
// every element of an array, and ends in a key: $.results[].stars,
// $.owner.username, $[].id. A key holds no '.', '[', ']' or '='.
//
// The server counts what the changes do in its metrics: the counter
// demo_build_changes_total{change,detail} counts the answers each change
// changed (change is drop-field, rename-field, fail-ratio, slow or
// tokens-scale; detail the path, PATH=NEWNAME, the endpoint or the factor),
// and demo_build_delay_seconds_total{endpoint} adds up the modelled delay of
// the requests to a slowed endpoint, its factor included. A change that
// can never apply is an error, save a path that no answer has: it changes
// nothing, and its counter stays 0.

// Endpoints lists the endpoints the backend serves, as build changes name
// them: the method and the path pattern of the route, such as
// "GET /api/projects/{id}/".
func Endpoints() []string {
	var out []string
	for _, rt := range routeTable() {
		out = append(out, rt.pattern)
	}
	return out
}

// slowEndpoints lists the endpoints whose answers the latency model delays.
func slowEndpoints() []string {
	var out []string
	for _, rt := range routeTable() {
		if rt.class != "" || rt.tokens {
			out = append(out, rt.pattern)
		}
	}
	return out
}

// build is the configuration of the build changes.
type build struct {
	fields      []fieldEdit        // in the order given, without counters
	fail        map[string]float64 // endpoint → share of requests answered 500
	slow        map[string]float64 // endpoint → latency factor
	tokensScale float64            // 1: as it is
	seed        uint64
}

func (b *build) changes(endpoint string) bool {
	return b.fail[endpoint] > 0 || b.slow[endpoint] > 0
}

// WithDropField makes JSON answers lose the field at path ($.results[].stars),
// in every answer that has it. Changes to fields apply in the order given.
func WithDropField(path string) Option {
	return func(c *config) error {
		steps, err := parseFieldPath(path)
		if err != nil {
			return err
		}
		c.build.fields = append(c.build.fields, fieldEdit{spec: path, path: steps})
		return nil
	}
}

// WithRenameField renames the field at path to name in every JSON answer
// that has it, keeping its value and its place among its object's members
// (and dropping a member the object already had by the new name).
func WithRenameField(path, name string) Option {
	return func(c *config) error {
		steps, err := parseFieldPath(path)
		if err != nil {
			return err
		}
		if err := checkKey(name); err != nil {
			return fmt.Errorf("field %q: new name %q: %w", path, name, err)
		}
		c.build.fields = append(c.build.fields, fieldEdit{spec: path + "=" + name, path: steps, to: name})
		return nil
	}
}

// WithFailRatio makes endpoint (see Endpoints) answer 500 to a share ratio
// of the requests that reach it past the session, rate limit and CSRF
// checks and its latency. Each request's draw is a pure function of the
// seed (WithSeed), the endpoint and how many requests to it came before, so
// the same requests fail in every run whatever the concurrency. Unlike
// Faults, the share is random: about ratio of the requests, not exactly.
// A later ratio for the same endpoint replaces an earlier one.
func WithFailRatio(endpoint string, ratio float64) Option {
	return func(c *config) error {
		if err := checkEndpoint(endpoint, Endpoints()); err != nil {
			return err
		}
		if !(ratio >= 0 && ratio <= 1) {
			return fmt.Errorf("fail ratio %g for %s: want a share in [0, 1]", ratio, endpoint)
		}
		if c.build.fail == nil {
			c.build.fail = map[string]float64{}
		}
		c.build.fail[endpoint] = ratio
		return nil
	}
}

// WithSlow multiplies the latency the model gives endpoint's answers by f
// (1.2: 20% slower; 0.5: twice as fast), on top of the latency scale: the
// latency of its class, or of each token the chat streams. Injected slow
// faults are not multiplied. A later factor for the same endpoint replaces
// an earlier one.
func WithSlow(endpoint string, f float64) Option {
	return func(c *config) error {
		if err := checkEndpoint(endpoint, slowEndpoints()); err != nil {
			return err
		}
		if err := checkFactor(f); err != nil {
			return fmt.Errorf("slow %s: %w", endpoint, err)
		}
		if c.build.slow == nil {
			c.build.slow = map[string]float64{}
		}
		c.build.slow[endpoint] = f
		return nil
	}
}

// WithTokensScale makes each reply of the chat's WebSocket stream f times
// as many token frames (rounded, at least 1), and say so in its done
// message. POST /api/chat/ is left as it is. The default is 1.
func WithTokensScale(f float64) Option {
	return func(c *config) error {
		if err := checkFactor(f); err != nil {
			return fmt.Errorf("tokens scale: %w", err)
		}
		c.build.tokensScale = f
		return nil
	}
}

// WithSeed seeds the random draws of build changes (WithFailRatio). The
// default is 1, so that a backend started twice with the same changes
// fails the same requests.
func WithSeed(seed uint64) Option {
	return func(c *config) error {
		c.build.seed = seed
		return nil
	}
}

// ParseDropField reads a path, such as $.results[].stars, into its
// WithDropField option.
func ParseDropField(s string) (Option, error) {
	if _, err := parseFieldPath(s); err != nil {
		return nil, err
	}
	return WithDropField(s), nil
}

// ParseRenameField reads PATH=NEWNAME, such as $.owner.username=login,
// into its WithRenameField option.
func ParseRenameField(s string) (Option, error) {
	path, name, ok := strings.Cut(s, "=")
	if !ok {
		return nil, fmt.Errorf("%q: want PATH=NEWNAME, such as $.owner.username=login", s)
	}
	if _, err := parseFieldPath(path); err != nil {
		return nil, err
	}
	if err := checkKey(name); err != nil {
		return nil, fmt.Errorf("%q: new name %q: %w", s, name, err)
	}
	return WithRenameField(path, name), nil
}

// ParseFailRatio reads a share of requests to fail, in one of two forms.
// R alone (0.01) is the share of all requests answered 500 or 503, exactly
// (Faults.ErrorRatio): it sets f's, and the option it returns does
// nothing. ENDPOINT=R ("GET /api/tools/=0.2") is a build change
// (WithFailRatio), the option it returns.
func (f *Faults) ParseFailRatio(s string) (Option, error) {
	endpoint, ratio, ok := strings.Cut(s, "=")
	if !ok {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || !(r >= 0 && r <= 1) {
			return nil, fmt.Errorf("%q: want a share R in [0, 1], or ENDPOINT=R, such as 'GET /api/tools/=0.2'", s)
		}
		f.ErrorRatio = r
		return func(*config) error { return nil }, nil
	}
	r, err := strconv.ParseFloat(ratio, 64)
	if err != nil || !(r >= 0 && r <= 1) {
		return nil, fmt.Errorf("%q: want ENDPOINT=R with R a share in [0, 1], such as 'GET /api/tools/=0.2'", s)
	}
	if err := checkEndpoint(endpoint, Endpoints()); err != nil {
		return nil, err
	}
	return WithFailRatio(endpoint, r), nil
}

// ParseSlow reads ENDPOINT=F, such as "GET /api/tools/=1.2", into its
// WithSlow option.
func ParseSlow(s string) (Option, error) {
	endpoint, factor, ok := strings.Cut(s, "=")
	f, err := strconv.ParseFloat(factor, 64)
	if !ok || err != nil || checkFactor(f) != nil {
		return nil, fmt.Errorf("%q: want ENDPOINT=F with F above 0, such as 'GET /api/tools/=1.2'", s)
	}
	if err := checkEndpoint(endpoint, slowEndpoints()); err != nil {
		return nil, err
	}
	return WithSlow(endpoint, f), nil
}

// ParseTokensScale reads a factor above 0 into its WithTokensScale option.
func ParseTokensScale(s string) (Option, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || checkFactor(f) != nil {
		return nil, fmt.Errorf("%q: want a factor above 0, such as 0.5 or 2", s)
	}
	return WithTokensScale(f), nil
}

func checkFactor(f float64) error {
	if !(f > 0) || math.IsInf(f, 0) {
		return fmt.Errorf("factor %g: want a number above 0", f)
	}
	return nil
}

// checkEndpoint reports an endpoint that is not one of served.
func checkEndpoint(endpoint string, served []string) error {
	if slices.Contains(served, endpoint) {
		return nil
	}
	if slices.Contains(Endpoints(), endpoint) {
		return fmt.Errorf("endpoint %q has no modelled latency; these have: %s", endpoint, strings.Join(served, ", "))
	}
	return fmt.Errorf("endpoint %q is not served; endpoints (METHOD /path/pattern/): %s", endpoint, strings.Join(served, ", "))
}

// parseFieldPath reads $.a[].b into its steps: keys, and "[]" for every
// element of an array.
func parseFieldPath(s string) ([]string, error) {
	rest, ok := strings.CutPrefix(s, "$")
	bad := func(why string) error {
		return fmt.Errorf("field path %q: %s; want $ then .KEY and [] steps, ending in a key, such as $.results[].stars", s, why)
	}
	if !ok {
		return nil, bad("it does not begin with $")
	}
	var steps []string
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "[]"):
			steps, rest = append(steps, "[]"), rest[2:]
		case rest[0] == '[':
			return nil, bad("arrays fold with [], not an index")
		case rest[0] == '.':
			end := strings.IndexAny(rest[1:], ".[")
			if end < 0 {
				end = len(rest) - 1
			}
			key := rest[1 : end+1]
			if err := checkKey(key); err != nil {
				return nil, bad(err.Error())
			}
			steps, rest = append(steps, key), rest[end+1:]
		default:
			return nil, bad(fmt.Sprintf("unexpected %q", rest[0]))
		}
	}
	if len(steps) == 0 || steps[len(steps)-1] == "[]" {
		return nil, bad("it names no field")
	}
	return steps, nil
}

func checkKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case strings.ContainsAny(key, ".[]="):
		return fmt.Errorf("key %q holds one of . [ ] =", key)
	}
	return nil
}

// endpointChange is what the build changes do to one endpoint's answers.
// A nil one changes nothing. It is safe for concurrent use.
type endpointChange struct {
	failRatio float64
	failKey   uint64        // the seed and endpoint, mixed: the draws' key
	n         atomic.Uint64 // requests drawn for so far
	failed    prometheus.Counter

	slow   float64 // latency factor; 0: none
	slowN  prometheus.Counter
	delayS prometheus.Counter // seconds of modelled delay, factor included
}

// fail draws whether this request fails.
func (e *endpointChange) fail() bool {
	if e == nil || e.failRatio == 0 {
		return false
	}
	if uniform(e.failKey, e.n.Add(1)) >= e.failRatio {
		return false
	}
	e.failed.Inc()
	return true
}

// slowed returns the delay d the model gave one wait of an answer as the
// build makes it, and counts it.
func (e *endpointChange) slowed(d time.Duration) time.Duration {
	if e == nil || e.slow == 0 {
		return d
	}
	d = time.Duration(float64(d) * e.slow)
	e.delayS.Add(d.Seconds())
	return d
}

// countSlow counts an answer whose waits slowed changed.
func (e *endpointChange) countSlow() {
	if e != nil && e.slow != 0 {
		e.slowN.Inc()
	}
}

// uniform is a counter-based random source: the n-th draw under key, in
// [0, 1). It is splitmix64, whose outputs for consecutive n pass the usual
// tests of randomness, and which needs neither state nor a lock.
func uniform(key, n uint64) float64 {
	return float64(mix64(key+n*0x9e3779b97f4a7c15)>>11) / (1 << 53)
}

// mix64 is splitmix64's finalizer: it spreads every bit of z over all 64.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// newChanges makes the per-endpoint changes and the JSON edits of b, with
// their counters in m, all at 0 until they change an answer.
func newChanges(b *build, m *metrics) (map[string]*endpointChange, []fieldEdit) {
	changes := map[string]*endpointChange{}
	for _, ep := range Endpoints() {
		if !b.changes(ep) {
			continue
		}
		h := fnv.New64a()
		_, _ = h.Write([]byte(ep))
		e := &endpointChange{failRatio: b.fail[ep], failKey: mix64(b.seed) ^ h.Sum64(), slow: b.slow[ep]}
		if e.failRatio > 0 {
			e.failed = m.changes.WithLabelValues("fail-ratio", ep)
		}
		if e.slow > 0 {
			e.slowN = m.changes.WithLabelValues("slow", ep)
			e.delayS = m.delay.WithLabelValues(ep)
		}
		changes[ep] = e
	}
	var edits []fieldEdit
	for _, f := range b.fields {
		kind := "drop-field"
		if f.to != "" {
			kind = "rename-field"
		}
		f.changed = m.changes.WithLabelValues(kind, f.spec)
		edits = append(edits, f)
	}
	return changes, edits
}
