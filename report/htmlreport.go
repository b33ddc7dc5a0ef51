package report

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

//go:embed html/report.html html/chart.js
var htmlFiles embed.FS

// The HTML report is one self-contained file: its styles, its chart code
// (a few dozen lines drawing SVG) and its data are inside, so it opens
// offline and can be mailed or archived as it is.

type htmlPage struct {
	Partial                               string // a partial merge's note (Result.PartialNote)
	Title, Target, Label, Start, Duration string
	JSON                                  template.JS
	Chart                                 template.JS // html/chart.js
}

// ChartJS returns the script that draws the HTML report's charts and
// tables (html/chart.js), for the live page of a run to draw its own.
func ChartJS() []byte {
	b, _ := htmlFiles.ReadFile("html/chart.js") // embedded: cannot fail
	return b
}

type htmlData struct {
	Totals       htmlTotals         `json:"totals"`
	Series       []htmlSecond       `json:"series"`
	Distribution []htmlQuantile     `json:"distribution"`
	Endpoints    []htmlEndpoint     `json:"endpoints"`
	Profiles     []htmlProfile      `json:"profiles"`
	Status       []htmlCount        `json:"status"`
	WebSockets   []htmlFigure       `json:"websockets"`
	Criteria     Verdicts           `json:"criteria"`
	Params       RunParams          `json:"params"`
	Extra        map[string]float64 `json:"extra,omitempty"`
}

type htmlTotals struct {
	Requests  int64   `json:"requests"`
	Failures  int64   `json:"failures"`
	ErrorRate float64 `json:"error_rate"`
	RPS       float64 `json:"rps"`
	P50       float64 `json:"p50"`
	P95       float64 `json:"p95"`
	P99       float64 `json:"p99"`
	LagP99    float64 `json:"lag_p99"`
}

type htmlSecond struct {
	T     int64    `json:"t"`
	RPS   int64    `json:"rps"`
	FPS   int64    `json:"fps"`
	Users int64    `json:"users"`
	P50   *float64 `json:"p50"`
	P95   *float64 `json:"p95"`
	P99   *float64 `json:"p99"`
	Lag   *float64 `json:"lag"`
}

type htmlQuantile struct {
	Q  float64 `json:"q"`
	MS float64 `json:"ms"`
}

type htmlEndpoint struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Profile  string `json:"profile"`
	Requests int64  `json:"requests"`
	Failures int64  `json:"failures"`
	// AsRecorded counts 4xx answers that were 4xx when recorded.
	AsRecorded int64   `json:"as_recorded"`
	RPS        float64 `json:"rps"`
	P50        float64 `json:"p50"`
	P95        float64 `json:"p95"`
	P99        float64 `json:"p99"`
	Max        float64 `json:"max"`
}

type htmlProfile struct {
	Name     string  `json:"name"`
	Requests int64   `json:"requests"`
	Failures int64   `json:"failures"`
	P50      float64 `json:"p50"`
	P95      float64 `json:"p95"`
	P99      float64 `json:"p99"`
}

type htmlCount struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

type htmlFigure struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func ptr(v float64) *float64 { return &v }

// WriteHTML writes res as a self-contained HTML report.
func WriteHTML(w io.Writer, res *Result) error {
	js, err := ViewJSON(res) // escapes <, > and &: safe inside the script element
	if err != nil {
		return err
	}
	tmpl, err := template.ParseFS(htmlFiles, "html/report.html")
	if err != nil {
		return err
	}
	title := res.Label
	if title == "" {
		title = res.Target
	}
	page := htmlPage{Title: title, Target: res.Target, Label: res.Label, Partial: res.PartialNote(), Start: res.Start.UTC().Format(time.RFC3339),
		Duration: res.End.Sub(res.Start).Round(time.Second).String(), JSON: template.JS(js), //nolint:gosec // JSON from json.Marshal
		Chart: template.JS(ChartJS())} //nolint:gosec // our own embedded script
	return tmpl.Execute(w, page)
}

// ViewJSON returns the figures of res as the HTML report's script reads
// them, as JSON: totals, the series, the latency distribution, the tables
// of endpoints, profiles, status codes and errors, WebSocket figures and
// the criteria. The live page (report/live) reads the same.
func ViewJSON(res *Result) ([]byte, error) {
	secs := max(res.End.Sub(res.Start).Seconds(), 1e-9)
	d := htmlData{Criteria: res.Criteria, Params: res.Params}
	if d.Criteria == nil {
		d.Criteria = Verdicts{}
	}
	profiles := map[string][]*hdrhistogram.Histogram{}
	byProfile := map[string]*htmlProfile{}
	status := map[string]int64{}
	var connects, replies, wsFailures int64
	var connectHist, replyHist []EndpointStats
	for _, e := range res.Endpoints {
		h, err := e.latencyHist()
		if err != nil {
			return nil, err
		}
		if profiles[e.Profile] == nil {
			byProfile[e.Profile] = &htmlProfile{Name: e.Profile}
		}
		profiles[e.Profile] = append(profiles[e.Profile], h)
		byProfile[e.Profile].Requests += e.Requests
		byProfile[e.Profile].Failures += e.Failures
		d.Endpoints = append(d.Endpoints, htmlEndpoint{Kind: e.Kind, Name: e.Name, Profile: e.Profile, Requests: e.Requests,
			Failures: e.Failures, AsRecorded: e.AsRecordedCount(), RPS: float64(e.Requests) / secs, P50: e.Latency.P50Ms, P95: e.Latency.P95Ms, P99: e.Latency.P99Ms, Max: e.Latency.MaxMs})
		for code, n := range e.StatusCodes {
			status["status "+code] += n
		}
		for kind, n := range e.Errors {
			status["error: "+string(kind)] += n
		}
		switch e.Kind {
		case "ws-connect":
			connects += e.Requests
			wsFailures += e.Failures
			connectHist = append(connectHist, e)
		case "ws-reply":
			replies += e.Requests
			replyHist = append(replyHist, e)
		}
	}
	sort.SliceStable(d.Endpoints, func(i, j int) bool { return d.Endpoints[i].Requests > d.Endpoints[j].Requests })
	// Each endpoint's histogram is summed once, into its profile's; the
	// profiles' into the whole.
	every := make([]*hdrhistogram.Histogram, 0, len(byProfile))
	for name, p := range byProfile {
		h := sumOf(profiles[name])
		every = append(every, h)
		q := quantiles(h, 50, 95, 99)
		p.P50, p.P95, p.P99 = float64(q[0])/1000, float64(q[1])/1000, float64(q[2])/1000
		d.Profiles = append(d.Profiles, *p)
	}
	slices.SortFunc(d.Profiles, func(a, b htmlProfile) int { return strings.Compare(a.Name, b.Name) })
	for name, n := range status {
		d.Status = append(d.Status, htmlCount{name, n})
	}
	slices.SortFunc(d.Status, func(a, b htmlCount) int { return strings.Compare(a.Name, b.Name) })
	ps := []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 98, 99, 99.5, 99.9, 99.99, 100}
	dist := quantiles(sumOf(every), ps...)
	for i, q := range ps {
		d.Distribution = append(d.Distribution, htmlQuantile{Q: q, MS: float64(dist[i]) / 1000})
	}
	ms := func(q float64) float64 { return float64(dist[slices.Index(ps, q)]) / 1000 }
	d.Totals = htmlTotals{Requests: res.Requests, Failures: res.Failures, ErrorRate: float64(res.Failures) / float64(max(res.Requests, 1)),
		RPS: float64(res.Requests) / secs, P50: ms(50), P95: ms(95), P99: ms(99), LagP99: res.Lag.P99Ms}
	for _, s := range res.Series {
		hs := htmlSecond{T: s.Offset, RPS: s.Requests, FPS: s.Failures, Users: s.Users}
		if len(s.Hist) > 0 || s.Latency.MaxMs > 0 { // a late second has no latencies
			hs.P50, hs.P95, hs.P99, hs.Lag = ptr(s.Latency.P50Ms), ptr(s.Latency.P95Ms), ptr(s.Latency.P99Ms), ptr(s.LagP99)
		}
		d.Series = append(d.Series, hs)
	}
	if connects > 0 || replies > 0 {
		perConn := 0.0
		if res.WebSocket.Connections > 0 {
			perConn = float64(res.WebSocket.FramesSent+res.WebSocket.FramesReceived) / float64(res.WebSocket.Connections)
		}
		d.WebSockets = []htmlFigure{
			{"connections tried", strconv.FormatInt(connects, 10)},
			{"connections failed", strconv.FormatInt(wsFailures, 10)},
			{"messages sent", strconv.FormatInt(res.WebSocket.FramesSent, 10)},
			{"messages received", strconv.FormatInt(res.WebSocket.FramesReceived, 10)},
			{"messages per connection", strconv.FormatFloat(perConn, 'f', 1, 64)},
			{"replies timed", strconv.FormatInt(replies, 10)},
		}
		for _, e := range connectHist {
			d.WebSockets = append(d.WebSockets, htmlFigure{"connect p95 (" + e.Profile + ")", fmt.Sprintf("%.1f ms", e.Latency.P95Ms)})
		}
		for _, e := range replyHist {
			d.WebSockets = append(d.WebSockets, htmlFigure{"reply first frame p95 (" + e.Profile + ")", fmt.Sprintf("%.1f ms", e.FirstByte.P95Ms)},
				htmlFigure{"reply complete p95 (" + e.Profile + ")", fmt.Sprintf("%.1f ms", e.Latency.P95Ms)})
		}
	} else {
		d.WebSockets = []htmlFigure{}
	}
	if d.Endpoints == nil {
		d.Endpoints = []htmlEndpoint{}
	}
	if d.Profiles == nil {
		d.Profiles = []htmlProfile{}
	}
	if d.Status == nil {
		d.Status = []htmlCount{}
	}
	if d.Series == nil {
		d.Series = []htmlSecond{}
	}
	return json.Marshal(d)
}
