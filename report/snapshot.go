package report

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// LiveEndpoint is one endpoint's figures so far, in one profile
// (Recorder.Live).
type LiveEndpoint struct {
	// Kind is as the result file names it: http, ws-connect, ws-reply,
	// long-poll.
	Kind, Name, Profile string
	Requests, Failures  int64
	// Status counts the answers by status code; Errors the requests that
	// got none, by why.
	Status map[int]int64
	Errors map[ErrorKind]int64
	// Latency is a copy of the latency histogram, in microseconds from
	// the intended send time.
	Latency *hdrhistogram.Histogram
}

// Live is a Recorder's figures so far, copied: what a live face of the
// run (an exporter) reads when it is asked, so that watching a run adds
// no work per request.
type Live struct {
	Endpoints []LiveEndpoint
	// Lag is a copy of the schedule lag histogram, in microseconds.
	Lag *hdrhistogram.Histogram
}

// Live copies the figures recorded so far. It holds the recorder's lock
// while it copies the histograms (about 136 KiB each), not longer.
func (r *Recorder) Live() Live {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := Live{Lag: r.lag.Clone(), Endpoints: make([]LiveEndpoint, 0, len(r.endpoints))}
	for _, k := range r.sortedKeys() {
		e := r.endpoints[k]
		if e.requests == 0 {
			continue // only skipped requests: none sent
		}
		l.Endpoints = append(l.Endpoints, LiveEndpoint{Kind: kindName(k.kind), Name: k.endpoint, Profile: k.profile,
			Requests: e.requests, Failures: e.failures, Status: maps.Clone(e.status), Errors: maps.Clone(e.errors), Latency: e.corrected.Clone()})
	}
	return l
}

// Peek returns the figures recorded until now as a result file holds
// them (without the run's target, label and params, which the caller
// knows), for a live face of the run to show and judge: its endpoints
// with their latency histograms, its lag, and the series of the seconds
// before now's. Its endpoints' histograms are kept decoded, for
// CheckAll and ViewJSON, not encoded in Hist. Unlike Result it leaves the open seconds open, so that
// peeking changes nothing of what the run records. It holds the
// recorder's lock while it copies the histograms; it computes the
// quantiles and encodings after.
func (r *Recorder) Peek(now time.Time) *Result {
	type copied struct {
		key                  endpointKey
		stats                endpointStats
		corrected, firstByte *hdrhistogram.Histogram
	}
	r.mu.Lock()
	res := &Result{Version: FormatVersion, Start: r.start, End: now, Clamped: r.clamped}
	lag := r.lag.Clone()
	eps := make([]copied, 0, len(r.endpoints))
	for _, k := range r.sortedKeys() {
		e := r.endpoints[k]
		c := copied{key: k, stats: *e, corrected: e.corrected.Clone()}
		if k.kind == WSReply { // its first frame's latency is shown too
			c.firstByte = e.firstByte.Clone()
		}
		c.stats.status, c.stats.errors = maps.Clone(e.status), maps.Clone(e.errors)
		c.stats.asRecorded, c.stats.skipped = maps.Clone(e.asRecorded), maps.Clone(e.skipped)
		eps = append(eps, c)
	}
	// A second is whole once it is over: requests are kept by when they
	// ended.
	last := int64(now.Sub(r.start) / time.Second)
	for _, s := range slices.Sorted(maps.Keys(r.seconds)) {
		ps := r.seconds[s]
		if s >= last {
			break
		}
		sec := Second{Offset: s, Requests: ps.requests, Failures: ps.failures, Users: ps.users, Latency: ps.latency, LagP99: ps.lagP99}
		if ps.hist != nil { // open: its figures so far
			sec.Latency, sec.LagP99 = latencyOf(ps.hist), float64(ps.lag.ValueAtQuantile(99))/1000
		}
		res.Series = append(res.Series, sec)
	}
	r.mu.Unlock()

	res.Lag = latencyOf(lag)
	for _, c := range eps {
		e := &c.stats
		es := EndpointStats{Kind: kindName(c.key.kind), Name: c.key.endpoint, Profile: c.key.profile, Requests: e.requests, Failures: e.failures,
			StatusCodes: map[string]int64{}, Errors: e.errors, Skipped: e.skipped, EndedBySilence: e.silent,
			Latency: latencyOf(c.corrected), peeked: c.corrected}
		for code, n := range e.status {
			es.StatusCodes[strconv.Itoa(code)] = n
		}
		for code, n := range e.asRecorded {
			if es.AsRecorded == nil {
				es.AsRecorded = map[string]int64{}
			}
			es.AsRecorded[strconv.Itoa(code)] = n
			res.AsRecorded += n
		}
		for _, n := range e.skipped {
			res.Skipped += n
		}
		if c.firstByte != nil {
			es.FirstByte = latencyOf(c.firstByte)
		}
		if len(es.Errors) == 0 {
			es.Errors = nil
		}
		res.Requests += e.requests
		res.Failures += e.failures
		res.Endpoints = append(res.Endpoints, es)
	}
	return res
}
