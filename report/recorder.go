package report

import (
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms record microseconds from 1 µs to 60 s; latency histograms keep
// 3 significant digits, per-second ones 2 (DESIGN.md: about 136 KiB and
// 20 KiB each).
const (
	histMin    = 1
	histMax    = 60_000_000
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func micros(d time.Duration) int64 { return min(max(d.Microseconds(), histMin), histMax) }

// Recorder gathers samples into per-endpoint histograms and counts. It is
// safe for concurrent use.
type Recorder struct {
	mu        sync.Mutex
	start     time.Time
	endpoints map[endpointKey]*endpointStats
	lag       *hdrhistogram.Histogram
	seconds   map[int64]*second
	clamped   int64 // values outside the histograms' range
}

type endpointKey struct {
	kind     Kind
	profile  string
	endpoint string
}

type endpointStats struct {
	requests, failures int64
	status             map[int]int64
	errors             map[ErrorKind]int64
	latency            *hdrhistogram.Histogram // from Sent to Done
	corrected          *hdrhistogram.Histogram // from Intended to Done
	firstByte          *hdrhistogram.Histogram
}

type second struct {
	requests, failures int64
}

// NewRecorder returns a Recorder whose per-second series count from start.
func NewRecorder(start time.Time) *Recorder {
	return &Recorder{start: start, endpoints: map[endpointKey]*endpointStats{}, lag: newHist(), seconds: map[int64]*second{}}
}

// Observe records s.
func (r *Recorder) Observe(s *Sample) {
	k := endpointKey{s.Kind, s.Profile, s.Endpoint}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.endpoints[k]
	if e == nil {
		e = &endpointStats{status: map[int]int64{}, errors: map[ErrorKind]int64{}, latency: newHist(), corrected: newHist(), firstByte: newHist()}
		r.endpoints[k] = e
	}
	e.requests++
	failed := s.Failed()
	if failed {
		e.failures++
	}
	if s.Err != "" {
		e.errors[s.Err]++
	} else {
		e.status[s.Status]++
	}
	r.record(e.latency, s.Done)
	r.record(e.corrected, s.Sent.Sub(s.Intended)+s.Done)
	if s.FirstByte > 0 {
		r.record(e.firstByte, s.FirstByte)
	}
	r.record(r.lag, max(s.Lag(), 0))
	sec := int64(s.Sent.Sub(r.start) / time.Second)
	ps := r.seconds[sec]
	if ps == nil {
		ps = &second{}
		r.seconds[sec] = ps
	}
	ps.requests++
	if failed {
		ps.failures++
	}
}

func (r *Recorder) record(h *hdrhistogram.Histogram, d time.Duration) {
	v := d.Microseconds()
	if v < histMin || v > histMax {
		r.clamped++
	}
	_ = h.RecordValue(micros(d)) // in range by construction
}

// Totals are a Recorder's figures so far, for a status line.
type Totals struct {
	Requests, Failures int64
	// P95 is the 95th percentile of latency from the intended send time.
	P95 time.Duration
	// LagP99 is the 99th percentile of schedule lag.
	LagP99 time.Duration
}

// Totals returns the figures so far across endpoints.
func (r *Recorder) Totals() Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := newHist()
	var t Totals
	for _, e := range r.endpoints {
		t.Requests += e.requests
		t.Failures += e.failures
		all.Merge(e.corrected)
	}
	t.P95 = time.Duration(all.ValueAtQuantile(95)) * time.Microsecond
	t.LagP99 = time.Duration(r.lag.ValueAtQuantile(99)) * time.Microsecond
	return t
}

// sortedKeys returns the endpoint keys in a stable order.
func (r *Recorder) sortedKeys() []endpointKey {
	keys := make([]endpointKey, 0, len(r.endpoints))
	for k := range r.endpoints {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.endpoint != b.endpoint {
			return a.endpoint < b.endpoint
		}
		return a.profile < b.profile
	})
	return keys
}
