package report

import (
	"fmt"
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

// newSecondHist returns a histogram for one second of the run.
func newSecondHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, 2) }

// decodeHist decodes a histogram of the result file (HdrHistogram's
// compressed V2 encoding); none is an empty one. The error names what.
func decodeHist(enc []byte, what string) (*hdrhistogram.Histogram, error) {
	if len(enc) == 0 {
		return newHist(), nil
	}
	h, err := hdrhistogram.Decode(enc)
	if err != nil {
		return nil, fmt.Errorf("%s histogram: %w", what, err)
	}
	return h, nil
}

func micros(d time.Duration) int64 { return min(max(d.Microseconds(), histMin), histMax) }

// Recorder gathers samples into per-endpoint histograms and counts. It is
// safe for concurrent use.
type Recorder struct {
	mu        sync.Mutex
	start     time.Time
	endpoints map[endpointKey]*endpointStats
	lag       *hdrhistogram.Histogram
	waited    *hdrhistogram.Histogram // made at the first request that waited for its causes
	seconds   map[int64]*second
	clamped   int64 // values outside the histograms' range
	// Seconds are kept by when their requests ended; a second's latency
	// histogram is open until a request ends two seconds later, then
	// its quantiles and encoding are kept and the histogram reused.
	open  []*second
	spare []*hdrhistogram.Histogram
	users func() int64 // how many users run now, if known
}

type endpointKey struct {
	kind     Kind
	profile  string
	endpoint string
}

type endpointStats struct {
	requests, failures int64
	status             map[int]int64
	asRecorded         map[int]int64       // 4xx answers the recording had as 4xx, by status
	silent             int64               // WebSocket replies that ended by a silence
	skipped            map[ErrorKind]int64 // requests not sent, by why
	errors             map[ErrorKind]int64
	latency            *hdrhistogram.Histogram // from Sent to Done
	corrected          *hdrhistogram.Histogram // from Intended to Done
	firstByte          *hdrhistogram.Histogram
	answers            *answerSketch // made at the first answer sketched
}

type second struct {
	at                 int64
	requests, failures int64
	users              int64
	hist, lag          *hdrhistogram.Histogram // while open
	latency            Latency
	lagP99             float64
	encoded            []byte
}

// NewRecorder returns a Recorder whose per-second series count from start.
func NewRecorder(start time.Time) *Recorder {
	return &Recorder{start: start, endpoints: map[endpointKey]*endpointStats{}, lag: newHist(), seconds: map[int64]*second{}}
}

// Observe records s.
func (r *Recorder) Observe(s *Sample) {
	k := endpointKey{s.Kind, s.Profile, s.Endpoint}
	if s.Kind == Skipped {
		k.kind = HTTP
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.endpoints[k]
	if e == nil {
		e = &endpointStats{status: map[int]int64{}, errors: map[ErrorKind]int64{}, latency: newHist(), corrected: newHist(), firstByte: newHist()}
		r.endpoints[k] = e
	}
	if s.Kind == Skipped {
		if e.skipped == nil {
			e.skipped = map[ErrorKind]int64{}
		}
		e.skipped[s.Err]++
		return
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
	if s.AsRecorded() {
		if e.asRecorded == nil {
			e.asRecorded = map[int]int64{}
		}
		e.asRecorded[s.Status]++
	}
	if s.Silent {
		e.silent++
	}
	if s.Answer != nil && s.Err == "" && (s.Kind == WSReply || s.Status >= 200 && s.Status < 300) {
		if e.answers == nil {
			e.answers = newAnswerSketch()
		}
		e.answers.add(s.Answer)
	}
	r.record(e.latency, s.Done)
	r.record(e.corrected, s.Sent.Sub(s.Intended)+s.Done)
	if s.FirstByte > 0 {
		r.record(e.firstByte, s.FirstByte)
	}
	r.record(r.lag, max(s.Lag(), 0))
	if s.Waited > 0 {
		if r.waited == nil {
			r.waited = newHist()
		}
		r.record(r.waited, s.Waited)
	}
	sec := int64(s.Sent.Add(s.Done).Sub(r.start) / time.Second)
	ps := r.seconds[sec]
	if ps == nil {
		ps = r.openSecond(sec)
	}
	ps.requests++
	if failed {
		ps.failures++
	}
	if ps.hist != nil {
		_ = ps.hist.RecordValue(micros(s.Sent.Sub(s.Intended) + s.Done))
		_ = ps.lag.RecordValue(micros(max(s.Lag(), 0)))
	}
}

// openSecond starts second sec, and closes the seconds two or more before
// it. Callers hold mu.
func (r *Recorder) openSecond(sec int64) *second {
	ps := &second{at: sec}
	r.seconds[sec] = ps
	if r.users != nil {
		ps.users = r.users()
	}
	kept := r.open[:0]
	for _, o := range r.open {
		if o.at <= sec-2 {
			r.closeSecond(o)
		} else {
			kept = append(kept, o)
		}
	}
	r.open = kept
	if len(r.open) > 0 && r.open[len(r.open)-1].at > sec+1 {
		return ps // a late second: counted, without latencies
	}
	ps.hist, ps.lag = r.spareHist(), r.spareHist()
	r.open = append(r.open, ps)
	return ps
}

func (r *Recorder) spareHist() *hdrhistogram.Histogram {
	if n := len(r.spare); n > 0 {
		h := r.spare[n-1]
		r.spare = r.spare[:n-1]
		h.Reset()
		return h
	}
	return newSecondHist()
}

// closeSecond keeps an open second's figures and frees its histograms.
func (r *Recorder) closeSecond(ps *second) {
	if ps.hist == nil {
		return
	}
	ps.latency = latencyOf(ps.hist)
	ps.lagP99 = float64(ps.lag.ValueAtQuantile(99)) / 1000
	ps.encoded = encode(ps.hist)
	r.spare = append(r.spare, ps.hist, ps.lag)
	ps.hist, ps.lag = nil, nil
}

// CountUsers has the recorder note, at each new second, how many users
// run then.
func (r *Recorder) CountUsers(f func() int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users = f
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
	var t Totals
	hs := make([]*hdrhistogram.Histogram, 0, len(r.endpoints))
	for _, e := range r.endpoints {
		t.Requests += e.requests
		t.Failures += e.failures
		hs = append(hs, e.corrected)
	}
	t.P95 = time.Duration(sumOf(hs).ValueAtQuantile(95)) * time.Microsecond
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
