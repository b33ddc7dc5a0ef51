package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// FormatVersion is the version of the result file format.
const FormatVersion = 1

// Result is the result file: what a run measured, from which everything else
// (summaries, comparisons, merges) is made. Histograms are kept whole, in
// HdrHistogram's compressed V2 encoding, so that shards merge exactly.
type Result struct {
	Version  int       `json:"version"`
	Target   string    `json:"target"`
	Label    string    `json:"label,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Params   RunParams `json:"params"`
	Requests int64     `json:"requests"`
	Failures int64     `json:"failures"`
	// AsRecorded counts the 4xx answers the recording had as 4xx too
	// (a favicon missing then and now): neither failures nor successes.
	AsRecorded int64 `json:"as_recorded,omitempty"`
	// Skipped counts the requests not sent because a value they needed
	// did not come (see EndpointStats.Skipped).
	Skipped int64 `json:"skipped,omitempty"`
	// RetriedStale counts requests sent again, once, on a new connection
	// because the server had closed the kept-alive one before answering
	// (as browsers do): not failures.
	RetriedStale int64 `json:"retried_stale,omitempty"`
	// Polls are the poll loops replayed (a job polled until done).
	Polls PollStats `json:"polls,omitzero"`
	// Clamped counts measurements outside the histograms' range (1 µs to
	// 60 s), recorded at the nearest end.
	Clamped   int64           `json:"clamped"`
	Endpoints []EndpointStats `json:"endpoints"`
	Lag       Latency         `json:"lag_ms"`
	LagHist   []byte          `json:"lag_histogram"`
	// Waited is how much later than scheduled the requests that waited
	// for their causes went out (the answer or reply they followed when
	// recorded was slower live): the order of the recording kept, at the
	// cost of its timing. Waits counts them.
	Waits      int64    `json:"waits,omitempty"`
	Waited     Latency  `json:"waited_ms,omitzero"`
	WaitedHist []byte   `json:"waited_histogram,omitempty"`
	Series     []Second `json:"series"`
	// Candidate and Control, in a side-by-side run (replay --candidate,
	// --control), are the results of the same users played at the same
	// moments against the candidate build and against a second instance
	// of the base: the Result holding them is the base's. compare of such
	// a file compares Candidate with the base, Control its noise.
	Candidate *Result `json:"candidate,omitempty"`
	Control   *Result `json:"control,omitempty"`
	// WebSocket counts the run's sockets and their messages.
	WebSocket WebSocketStats `json:"websocket"`
	// Interrupted says the run was stopped (Ctrl-C, SIGTERM) before its
	// end: End tells how long it really ran.
	Interrupted bool `json:"interrupted,omitempty"`
	// Criteria are the run's success criteria (--threshold) and how they
	// fared.
	Criteria Verdicts `json:"criteria,omitempty"`
}

// PollStats count a run's poll loops: requests repeated until their
// answer says the job is done, as the recorded page did. Unfinished
// loops reached their bound (ten times the recorded polls) first.
type PollStats struct {
	Loops      int64 `json:"loops"`
	Polls      int64 `json:"polls"`
	Unfinished int64 `json:"unfinished"`
}

// WebSocketStats are a run's WebSocket figures: connections opened, and
// the data messages sent and received on them.
type WebSocketStats struct {
	Connections    int64 `json:"connections"`
	FramesSent     int64 `json:"frames_sent"`
	FramesReceived int64 `json:"frames_received"`
}

// AsRecordedCount returns how many of the endpoint's answers were 4xx as
// recorded.
func (e *EndpointStats) AsRecordedCount() int64 {
	var n int64
	for _, c := range e.AsRecorded {
		n += c
	}
	return n
}

// EndpointStats are one endpoint's figures for one profile.
type EndpointStats struct {
	Kind        string              `json:"kind"`
	Name        string              `json:"name"`
	Profile     string              `json:"profile"`
	Requests    int64               `json:"requests"`
	Failures    int64               `json:"failures"`
	StatusCodes map[string]int64    `json:"status_codes"`
	Errors      map[ErrorKind]int64 `json:"errors,omitempty"`
	// AsRecorded counts, by status, the 4xx answers the recording had as
	// 4xx too: not failures.
	AsRecorded map[string]int64 `json:"as_recorded,omitempty"`
	// EndedBySilence counts the WebSocket replies that ended with a
	// silence rather than a frame shaped like the recorded last one.
	EndedBySilence int64 `json:"ended_by_silence,omitempty"`
	// Skipped counts, by why ("skipped: depends on POST /docs $.id"), the
	// requests not sent because a value they needed did not come: as a
	// browser has no link to follow when the page that gave it failed.
	// They are not requests, and not failures: the failure is their
	// source's.
	Skipped map[ErrorKind]int64 `json:"skipped,omitempty"`
	// Latency is from the intended send time (no coordinated omission);
	// ServiceLatency from the actual one.
	Latency        Latency `json:"latency_ms"`
	ServiceLatency Latency `json:"service_latency_ms"`
	FirstByte      Latency `json:"first_byte_ms"`
	Hist           []byte  `json:"latency_histogram"`
	ServiceHist    []byte  `json:"service_latency_histogram"`
	FirstByteHist  []byte  `json:"first_byte_histogram"`
	// Answers sketch what the endpoint answered (its 2xx answers, its
	// WebSocket replies), when the engine read them.
	Answers *AnswerStats `json:"answers,omitempty"`
	// peeked, when not nil, is the latency histogram of a result made
	// by Recorder.Peek, which leaves Hist empty: encoding it there and
	// decoding it here would be most of what a peek costs.
	peeked *hdrhistogram.Histogram
}

// latencyHist returns e's latency histogram: the one Peek copied, else
// Hist decoded. The error names the endpoint.
func (e *EndpointStats) latencyHist() (*hdrhistogram.Histogram, error) {
	if e.peeked != nil {
		return e.peeked, nil
	}
	return decodeHist(e.Hist, e.Name+": latency")
}

// Latency holds quantiles in milliseconds.
type Latency struct {
	P50Ms float64 `json:"p50"`
	P90Ms float64 `json:"p90"`
	P95Ms float64 `json:"p95"`
	P99Ms float64 `json:"p99"`
	MaxMs float64 `json:"max"`
}

// Second is one second of the run: the requests that ended in it.
type Second struct {
	Offset   int64 `json:"offset_s"`
	Requests int64 `json:"requests"`
	Failures int64 `json:"failures"`
	Users    int64 `json:"users"`
	// Latency is from when requests were due; Hist is its histogram (2
	// significant digits), for merging shards and for any quantile.
	Latency Latency `json:"latency_ms"`
	LagP99  float64 `json:"lag_p99_ms"`
	Hist    []byte  `json:"latency_histogram,omitempty"`
	// Changes are the changes of users asked in this second (the live
	// page's control), in order.
	Changes []UsersChange `json:"changes,omitempty"`
}

// A UsersChange is a change of users asked of a run while it played:
// from AtS seconds into it, go to Users at SpawnRate users a second (0:
// at once).
type UsersChange struct {
	AtS       float64 `json:"at_s"`
	Users     int     `json:"users"`
	SpawnRate float64 `json:"spawn_rate"`
}

// NoteChange puts c in the series, in the second it was asked in (added
// if no request ended in it).
func (res *Result) NoteChange(c UsersChange) {
	at := int64(math.Floor(c.AtS))
	i, found := slices.BinarySearchFunc(res.Series, at, func(s Second, at int64) int { return cmp.Compare(s.Offset, at) })
	if !found {
		res.Series = slices.Insert(res.Series, i, Second{Offset: at})
	}
	res.Series[i].Changes = append(res.Series[i].Changes, c)
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	q := quantiles(h, 50, 90, 95, 99, 100)
	ms := func(i int) float64 { return float64(q[i]) / 1000 }
	return Latency{P50Ms: ms(0), P90Ms: ms(1), P95Ms: ms(2), P99Ms: ms(3), MaxMs: ms(4)}
}

func encode(h *hdrhistogram.Histogram) []byte {
	b, err := h.EncodeV2()
	if err != nil {
		// Encoding a histogram made by newHist cannot fail; keep the
		// result file valid if it ever did.
		return nil
	}
	return b
}

func kindName(k Kind) string {
	switch k {
	case WSConnect:
		return "ws-connect"
	case WSReply:
		return "ws-reply"
	case LongPoll:
		return "long-poll"
	}
	return "http"
}

// Result returns what was recorded as a result file.
func (r *Recorder) Result(target, label string, end time.Time, params RunParams) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &Result{Version: FormatVersion, Target: target, Label: label, Start: r.start, End: end, Params: params,
		Clamped: r.clamped, Lag: latencyOf(r.lag), LagHist: encode(r.lag)}
	if r.waited != nil {
		res.Waits, res.Waited, res.WaitedHist = r.waited.TotalCount(), latencyOf(r.waited), encode(r.waited)
	}
	for _, k := range r.sortedKeys() {
		e := r.endpoints[k]
		es := EndpointStats{
			Kind: kindName(k.kind), Name: k.endpoint, Profile: k.profile, Requests: e.requests, Failures: e.failures,
			StatusCodes: map[string]int64{}, Latency: latencyOf(e.corrected), ServiceLatency: latencyOf(e.latency),
			FirstByte: latencyOf(e.firstByte), Hist: encode(e.corrected), ServiceHist: encode(e.latency), FirstByteHist: encode(e.firstByte),
		}
		for code, n := range e.status {
			es.StatusCodes[fmt.Sprint(code)] = n
		}
		if len(e.errors) > 0 {
			es.Errors = map[ErrorKind]int64{}
			for kind, n := range e.errors {
				es.Errors[kind] = n
			}
		}
		for code, n := range e.asRecorded {
			if es.AsRecorded == nil {
				es.AsRecorded = map[string]int64{}
			}
			es.AsRecorded[fmt.Sprint(code)] = n
			res.AsRecorded += n
		}
		es.EndedBySilence = e.silent
		if e.answers != nil {
			es.Answers = e.answers.stats()
		}
		for why, n := range e.skipped {
			if es.Skipped == nil {
				es.Skipped = map[ErrorKind]int64{}
			}
			es.Skipped[why] = n
			res.Skipped += n
		}
		res.Requests += e.requests
		res.Failures += e.failures
		res.Endpoints = append(res.Endpoints, es)
	}
	secs := make([]int64, 0, len(r.seconds))
	for s := range r.seconds {
		secs = append(secs, s)
	}
	slices.Sort(secs)
	for _, o := range r.open {
		r.closeSecond(o)
	}
	r.open = r.open[:0]
	for _, s := range secs {
		ps := r.seconds[s]
		res.Series = append(res.Series, Second{Offset: s, Requests: ps.requests, Failures: ps.failures, Users: ps.users,
			Latency: ps.latency, LagP99: ps.lagP99, Hist: ps.encoded})
	}
	return res
}

// WriteJSON writes the result as indented JSON.
func (res *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// ReadResult reads a result file, refusing newer formats.
func ReadResult(r io.Reader) (*Result, error) {
	var res Result
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		return nil, fmt.Errorf("not a result file: %w", err)
	}
	if res.Version > FormatVersion {
		return nil, fmt.Errorf("result format version %d is newer than this thrive's %d", res.Version, FormatVersion)
	}
	return &res, nil
}

// MaxLagP99 is the schedule lag p99, in milliseconds, past which a run's
// latencies say more about the generator than about the target.
const MaxLagP99 = 10

// LagWarning says when the generator, not the target, was the bottleneck
// (schedule lag p99 past MaxLagP99); "" when it was not.
func (r *Result) LagWarning() string {
	if r.Lag.P99Ms <= MaxLagP99 {
		return ""
	}
	return fmt.Sprintf("schedule lag p99 is %.1f ms: the generator, not the target, was the bottleneck", r.Lag.P99Ms)
}
