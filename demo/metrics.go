package demo

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the backend's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	websocket prometheus.Gauge
	// messages counts WebSocket data messages by direction: "received"
	// from clients, "sent" to them.
	messages *prometheus.CounterVec
	logins   prometheus.Counter
	faults   *prometheus.CounterVec
	// changes counts the answers each build change changed, by change
	// and detail (the path, endpoint or factor); delay the seconds of
	// modelled delay of a slowed endpoint's requests.
	changes *prometheus.CounterVec
	delay   *prometheus.CounterVec
	busy    prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, endpoint pattern and status code.",
		}, []string{"method", "endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time from the request's arrival to the end of its answer.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "endpoint"}),
		websocket: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "websocket_connections",
			Help: "WebSocket connections open now.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "websocket_messages_total",
			Help: "WebSocket data messages, by direction: received from clients, sent to them.",
		}, []string{"direction"}),
		logins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "demo_logins_total",
			Help: "Successful logins, each a new session.",
		}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "demo_faults_total",
			Help: "Injected faults, by kind: error, reset, slow.",
		}, []string{"kind"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "demo_build_changes_total",
			Help: "Answers a build change changed, by change (drop-field, rename-field, fail-ratio, slow, tokens-scale) and detail (the field's path, PATH=NEWNAME, the endpoint, the factor).",
		}, []string{"change", "detail"}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "demo_busy_seconds_total",
			Help: "CPU time spent computing answers (the busy share of their modelled latency).",
		}),
		delay: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "demo_build_delay_seconds_total",
			Help: "Modelled delay of the requests to an endpoint a slow build change applies to, its factor included.",
		}, []string{"endpoint"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.websocket, m.messages, m.logins, m.faults, m.changes, m.delay, m.busy)
	return m
}
