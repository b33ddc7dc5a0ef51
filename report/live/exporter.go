package live

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thrive-loadtest/thrive/report"
)

// Figures are a run's live figures that its recorder does not keep.
type Figures struct {
	Users, Sockets             int64 // running, open now
	FramesSent, FramesReceived int64 // WebSocket data messages so far
}

// Source is what an Exporter reads at each scrape: one run.
type Source struct {
	Recorder *report.Recorder
	// Figures, if not nil, gives the figures the recorder does not keep.
	Figures func() Figures
	// Run and Shard are the values of the run and shard labels.
	Run, Shard string
}

// Exporter is a prometheus.Collector of a run's figures: at each scrape
// it copies the recorder's state (report.Recorder.Live) and turns it into
// metrics, so that it adds nothing to the work of a request. It exports
// nothing until Watch gives it a run. It is safe for concurrent use.
type Exporter struct {
	mu  sync.Mutex
	src Source
	d   descs
}

var _ prometheus.Collector = (*Exporter)(nil)

type descs struct {
	requests, failures, duration, users, sockets, frames, lag, errors *prometheus.Desc
}

// New returns an Exporter of no run yet.
func New() *Exporter {
	l := func(names ...string) []string { return append(names, "run", "shard") }
	return &Exporter{d: descs{
		requests: prometheus.NewDesc("thrive_requests_total",
			"Requests that ended (WebSocket handshakes and replies included), by endpoint, profile and status code (\"error\": no answer).",
			l("endpoint", "profile", "code"), nil),
		failures: prometheus.NewDesc("thrive_failures_total",
			"Requests that failed, as the result file counts them (a 4xx the recording had too is not one; a 429 is not one).",
			l("endpoint", "profile"), nil),
		duration: prometheus.NewDesc("thrive_request_duration_seconds",
			"Latency of requests from when each was due (no coordinated omission), by endpoint and profile.",
			l("endpoint", "profile"), nil),
		users:   prometheus.NewDesc("thrive_users", "Users running now.", l(), nil),
		sockets: prometheus.NewDesc("thrive_websocket_connections", "WebSocket connections open now.", l(), nil),
		frames: prometheus.NewDesc("thrive_websocket_frames_total",
			"WebSocket data messages, by direction: sent to the target, received from it.", l("direction"), nil),
		lag: prometheus.NewDesc("thrive_schedule_lag_seconds",
			"How late requests went out after they were due: the generator's own lateness.", l(), nil),
		errors: prometheus.NewDesc("thrive_errors_total", "Requests that got no answer, by why.", l("kind"), nil),
	}}
}

// Watch has the next scrapes read src: the run that starts (a ladder's
// next phase replaces its last).
func (x *Exporter) Watch(src Source) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.src = src
}

// Describe sends the descriptions of every metric the Exporter makes.
func (x *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{x.d.requests, x.d.failures, x.d.duration, x.d.users, x.d.sockets, x.d.frames, x.d.lag, x.d.errors} {
		ch <- d
	}
}

// byLabels is one endpoint and profile's figures: the result file's
// endpoints of several kinds of one name (a handshake and its replies)
// are one series.
type byLabels struct {
	endpoint, profile  string
	status             map[string]int64
	failures, requests int64
	hist               hist
}

// Collect reads the run's state and sends its metrics.
func (x *Exporter) Collect(ch chan<- prometheus.Metric) {
	x.mu.Lock()
	src := x.src
	x.mu.Unlock()
	if src.Recorder == nil {
		return
	}
	live := src.Recorder.Live()
	run := []string{src.Run, src.Shard}
	with := func(vals ...string) []string { return append(vals, run...) }
	var order []*byLabels
	seen := map[[2]string]*byLabels{}
	errs := map[report.ErrorKind]int64{}
	for _, e := range live.Endpoints {
		k := [2]string{e.Name, e.Profile}
		b := seen[k]
		if b == nil {
			b = &byLabels{endpoint: e.Name, profile: e.Profile, status: map[string]int64{}}
			seen[k] = b
			order = append(order, b)
		}
		b.requests += e.Requests
		b.failures += e.Failures
		for code, n := range e.Status {
			b.status[strconv.Itoa(code)] += n
		}
		for kind, n := range e.Errors {
			b.status["error"] += n
			errs[kind] += n
		}
		b.hist.add(e.Latency)
	}
	for _, b := range order {
		for code, n := range b.status {
			ch <- prometheus.MustNewConstMetric(x.d.requests, prometheus.CounterValue, float64(n), with(b.endpoint, b.profile, code)...)
		}
		ch <- prometheus.MustNewConstMetric(x.d.failures, prometheus.CounterValue, float64(b.failures), with(b.endpoint, b.profile)...)
		ch <- b.hist.metric(x.d.duration, with(b.endpoint, b.profile))
	}
	for kind, n := range errs {
		ch <- prometheus.MustNewConstMetric(x.d.errors, prometheus.CounterValue, float64(n), with(string(kind))...)
	}
	var lag hist
	lag.add(live.Lag)
	ch <- lag.metric(x.d.lag, run)
	if src.Figures != nil {
		f := src.Figures()
		ch <- prometheus.MustNewConstMetric(x.d.users, prometheus.GaugeValue, float64(f.Users), run...)
		ch <- prometheus.MustNewConstMetric(x.d.sockets, prometheus.GaugeValue, float64(f.Sockets), run...)
		ch <- prometheus.MustNewConstMetric(x.d.frames, prometheus.CounterValue, float64(f.FramesSent), with("sent")...)
		ch <- prometheus.MustNewConstMetric(x.d.frames, prometheus.CounterValue, float64(f.FramesReceived), with("received")...)
	}
}
