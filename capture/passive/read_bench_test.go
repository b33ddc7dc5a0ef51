package passive

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// BenchmarkRead measures Read alone, without the sessionizer and the trace
// writer that thrive import adds: a pcap of 64 keep-alive connections
// taking turns, 12,800 exchanges of a GET and a 1 KB JSON answer, each in
// one segment, as a loopback capture of bench/passive.sh's load holds
// them. MB/s is of the pcap file.
func BenchmarkRead(b *testing.B) {
	const conns, each = 64, 200
	body := `{"id":7,"title":"Video summary agent","description":"` + strings.Repeat("word ", 180) + `"}`
	answer := "HTTP/1.1 200 OK\r\nServer: fasthttp\r\nDate: Sun, 06 Dec 2026 09:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	c := newCapture(b)
	tcs := make([]*tcpConn, conns)
	for i := range tcs {
		tcs[i] = c.conn(uint16(40000 + i)).open()
	}
	for n := range each {
		for _, tc := range tcs {
			tc.client("GET /api/projects/7/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: Go-http-client/1.1\r\nX-Seq: " + strconv.Itoa(n) + "\r\nAccept-Encoding: gzip\r\n\r\n")
			c.wait(-time.Millisecond + 20*time.Microsecond) // 50,000 packets a second, not 1,000
			tc.server(answer)
			c.wait(-time.Millisecond + 20*time.Microsecond)
		}
	}
	for _, tc := range tcs {
		tc.close()
	}
	file := c.pcap()
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	b.ResetTimer()
	exchanges := 0
	for b.Loop() {
		st, err := Read(bytes.NewReader(file), "bench.pcap", Filter{Ports: []int{8000}}, func(time.Time, string, string, *traces.Exchange) {}, func(time.Time) {})
		if err != nil {
			b.Fatal(err)
		}
		if st.Exchanges != conns*each {
			b.Fatalf("read %d exchanges whole, want %d (stats %+v)", st.Exchanges, conns*each, st)
		}
		exchanges += st.Exchanges
	}
	b.ReportMetric(float64(exchanges)/b.Elapsed().Seconds(), "exchanges/s")
}
