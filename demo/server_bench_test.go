package demo_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/demo"
)

// BenchmarkServerDetail measures the backend's throughput on project
// details with no added latency, over keep-alive connections.
func BenchmarkServerDetail(b *testing.B) {
	base := start(b, demo.WithLatencyScale(0), demo.WithRateLimit(0, 1))
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req, _ := http.NewRequestWithContext(context.Background(), "GET", fmt.Sprintf("%s/api/projects/%d/", base, 1+i%500), nil)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkIdleConnection measures what an open keep-alive connection that
// has made one request costs the backend, in memory.
func BenchmarkIdleConnection(b *testing.B) {
	base := start(b, demo.WithLatencyScale(0), demo.WithRateLimit(0, 1))
	addr := base[len("http://"):]
	const n = 2000
	for b.Loop() {
		before := inUse()
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.WriteString(c, "GET /api/tools/ HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				b.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			conns = append(conns, c)
		}
		after := inUse()
		b.ReportMetric(float64(after-before)/n, "bytes/conn")
		for _, c := range conns {
			c.Close()
		}
	}
}

// BenchmarkIdleWebSocket measures what an open chat WebSocket costs the
// backend, in memory.
func BenchmarkIdleWebSocket(b *testing.B) {
	base := start(b, demo.WithLatencyScale(0), demo.WithRateLimit(0, 1))
	jarClient := newClient(b, base)
	jarClient.login("ann")
	const n = 1000
	for b.Loop() {
		before := inUse()
		conns := make([]*websocket.Conn, 0, n)
		for range n {
			conn, _, err := jarClient.dialChat()
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, conn)
		}
		after := inUse()
		b.ReportMetric(float64(after-before)/n, "bytes/socket")
		for _, c := range conns {
			c.Close()
		}
	}
}

// inUse returns the heap and stacks in use after a collection. The client
// side of the benchmark lives in the same process, so the figure is an upper
// bound for the server's share.
func inUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
