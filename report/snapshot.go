package report

import (
	"maps"

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
