package live

import (
	"context"
	"math"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/thrive-loadtest/thrive/internal/promtest"
	"github.com/thrive-loadtest/thrive/report"
)

// find returns the metric of mf whose labels include want; nil if none.
func find(mf *dto.MetricFamily, want map[string]string) *dto.Metric {
	for _, m := range mf.GetMetric() {
		got, ok := promtest.Labels(m), true
		for k, v := range want {
			ok = ok && got[k] == v
		}
		if ok {
			return m
		}
	}
	return nil
}

// TestExporter: what a recorder holds, as Prometheus reads it: counts by
// status and error, latency as classic and native buckets that agree,
// the run's figures, each series labelled with its run and shard.
func TestExporter(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	rec := report.NewRecorder(start)
	for i := 1; i <= 100; i++ {
		s := report.Sample{Kind: report.HTTP, Profile: "browse", Endpoint: "GET /a", Status: 200, Expected: 200, Intended: start, Sent: start, Done: time.Duration(i) * time.Millisecond}
		if i > 90 {
			s.Status = 503
		}
		rec.Observe(&s)
	}
	for range 3 {
		rec.Observe(&report.Sample{Kind: report.HTTP, Profile: "chat", Endpoint: "GET /b", Err: report.ErrReset, Intended: start, Sent: start.Add(2 * time.Millisecond), Done: time.Second})
	}
	// A handshake and its replies of one name are one series.
	rec.Observe(&report.Sample{Kind: report.WSConnect, Profile: "chat", Endpoint: "GET /ws", Status: 101, Expected: 101, Intended: start, Sent: start, Done: 3 * time.Millisecond})
	rec.Observe(&report.Sample{Kind: report.WSReply, Profile: "chat", Endpoint: "GET /ws", Intended: start, Sent: start, Done: 4 * time.Millisecond})

	x := New()
	srv, err := x.Serve(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	if mfs := promtest.Scrape(t, srv.Addr); mfs["thrive_requests_total"] != nil {
		t.Errorf("before a run: %v, want no thrive_requests_total", mfs["thrive_requests_total"])
	}
	x.Watch(Source{Recorder: rec, Run: start.UTC().Format(time.RFC3339), Shard: "1/4",
		Figures: func() Figures { return Figures{Users: 7, Sockets: 2, FramesSent: 11, FramesReceived: 13} }})
	mfs := promtest.Scrape(t, srv.Addr)

	run := map[string]string{"run": "2027-01-15T08:00:00Z", "shard": "1/4"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"run": run["run"], "shard": run["shard"]}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name, family string
		labels       map[string]string
		want         float64
	}{
		{"200s", "thrive_requests_total", with("endpoint", "GET /a", "profile", "browse", "code", "200"), 90},
		{"503s", "thrive_requests_total", with("endpoint", "GET /a", "profile", "browse", "code", "503"), 10},
		{"no answer", "thrive_requests_total", with("endpoint", "GET /b", "profile", "chat", "code", "error"), 3},
		{"handshake and reply", "thrive_requests_total", with("endpoint", "GET /ws", "profile", "chat", "code", "101"), 1},
		{"failures", "thrive_failures_total", with("endpoint", "GET /a", "profile", "browse"), 10},
		{"errors by kind", "thrive_errors_total", with("kind", "connection reset"), 3},
		{"frames sent", "thrive_websocket_frames_total", with("direction", "sent"), 11},
		{"frames received", "thrive_websocket_frames_total", with("direction", "received"), 13},
		{"users", "thrive_users", run, 7},
		{"sockets", "thrive_websocket_connections", run, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := find(mfs[tc.family], tc.labels)
			if m == nil {
				t.Fatalf("no %s%v in %v", tc.family, tc.labels, mfs[tc.family])
			}
			if got := m.GetCounter().GetValue() + m.GetGauge().GetValue(); got != tc.want {
				t.Errorf("%s%v = %g, want %g", tc.family, tc.labels, got, tc.want)
			}
		})
	}
	t.Run("latency", func(t *testing.T) {
		m := find(mfs["thrive_request_duration_seconds"], with("endpoint", "GET /a", "profile", "browse"))
		h := m.GetHistogram()
		if h.GetSampleCount() != 100 || math.Abs(h.GetSampleSum()-5.05) > 0.01 {
			t.Errorf("count %d sum %g, want 100 and 5.05 s (1 to 100 ms)", h.GetSampleCount(), h.GetSampleSum())
		}
		classic := map[float64]uint64{}
		for _, b := range h.GetBucket() {
			classic[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		for le, want := range map[float64]uint64{0.001: 1, 0.01: 10, 0.05: 50, 0.1: 100, 60: 100} {
			if classic[le] != want {
				t.Errorf("le=%g: %d, want %d", le, classic[le], want)
			}
		}
		if h.GetSchema() != nativeSchema || len(h.GetPositiveSpan()) == 0 {
			t.Fatalf("schema %d, %d spans: want a native histogram of schema %d", h.GetSchema(), len(h.GetPositiveSpan()), nativeSchema)
		}
		// The native buckets hold every value, each in its bucket: 1 ms
		// in (2^(-80/8), 2^(-79/8)].
		var count, n int64
		first := int(h.GetPositiveSpan()[0].GetOffset())
		for _, d := range h.GetPositiveDelta() {
			n += d
			count += n
		}
		if count != 100 || first != nativeIndex(0.001) || first != -79 {
			t.Errorf("native buckets count %d from bucket %d, want 100 from %d (-79)", count, first, nativeIndex(0.001))
		}
	})
	t.Run("lag", func(t *testing.T) {
		h := find(mfs["thrive_schedule_lag_seconds"], run).GetHistogram()
		// 105 requests; the 3 to GET /b went 2 ms late, the others
		// none (the histograms' 1 µs).
		if h.GetSampleCount() != 105 || math.Abs(h.GetSampleSum()-0.006102) > 1e-9 {
			t.Errorf("lag count %d sum %g, want 105 and 0.006 s", h.GetSampleCount(), h.GetSampleSum())
		}
	})
}

// TestNativeHistogramsInPrometheus: a real Prometheus with native
// histograms on ingests the exporter's latency as one, and its quantiles
// are the recorded ones, within the native buckets' 9%.
func TestNativeHistogramsInPrometheus(t *testing.T) {
	start := time.Now()
	rec := report.NewRecorder(start)
	for i := 1; i <= 100; i++ {
		rec.Observe(&report.Sample{Kind: report.HTTP, Profile: "browse", Endpoint: "GET /a", Status: 200, Expected: 200, Intended: start, Sent: start, Done: time.Duration(i) * time.Millisecond})
	}
	x := New()
	x.Watch(Source{Recorder: rec, Run: "r", Shard: "0/1"})
	srv, err := x.Serve(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	c, _ := promtest.Start(t, map[string]string{"thrive": srv.Addr}, "--enable-feature=native-histograms")
	value := func(query string) (float64, bool) {
		ss, err := c.Query(context.Background(), query, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if len(ss) != 1 || len(ss[0].Points) != 1 {
			return 0, false
		}
		return ss[0].Points[0].V, true
	}
	promtest.Until(t, 30*time.Second, "a scrape of the exporter's native histogram", func() bool {
		_, ok := value("histogram_count(thrive_request_duration_seconds)")
		return ok
	})
	for _, tc := range []struct {
		query     string
		want, tol float64
	}{
		{"histogram_count(thrive_request_duration_seconds)", 100, 0},
		{"histogram_sum(thrive_request_duration_seconds)", 5.05, 0.01},
		{"histogram_quantile(0.5, thrive_request_duration_seconds)", 0.050, 0.09 * 0.050},
		{"histogram_quantile(0.99, thrive_request_duration_seconds)", 0.099, 0.09 * 0.099},
	} {
		if got, ok := value(tc.query); !ok || math.Abs(got-tc.want) > tc.tol {
			t.Errorf("%s = %g (%v), want %g ± %g", tc.query, got, ok, tc.want, tc.tol)
		}
	}
}
