package passive

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// TestLive captures real traffic on loopback from a packet socket, over
// IPv4 and IPv6: the exchanges handed on are the requests the server
// counted, and the socket's client frames the messages it read; a busy
// server on another port, which the kernel's filter leaves out, adds no
// packet. Without the privilege to capture (CAP_NET_RAW) it skips, unless
// THRIVE_REQUIRE_TCPDUMP=1 (.ci/run, as root).
func TestLive(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			s := newServer(t)
			if network == "tcp6" {
				ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp6", "[::1]:0")
				if err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				s.srv.Close()
				s.srv = httptest.NewUnstartedServer(s.srv.Config.Handler)
				s.srv.Listener = ln
				s.srv.Start()
			}
			_, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
			f := Filter{Ports: []int{atoi(t, port)}}
			h := openLoopback(t, f)
			busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
			defer busy.Close()
			for range 300 {
				req, err := http.NewRequestWithContext(t.Context(), "GET", busy.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
			}
			s.traffic(t)
			s.check(t, port, func(add AddFunc) (Stats, error) {
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a watchdog: the marker comes in milliseconds
				defer cancel()
				st, err := Live(ctx, h, f, func(start time.Time, conn, client string, ex *traces.Exchange) {
					if strings.HasPrefix(ex.URL, "/marker") {
						cancel()
					}
					add(start, conn, client, ex)
				}, func(time.Time) {}, nil)
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					t.Fatal("the capture did not read the last answer in a minute")
				}
				if st.Packets >= 300 {
					t.Errorf("%d packets read: the other port's 300 exchanges were not left in the kernel", st.Packets)
				}
				if _, drops := h.Kernel(); drops != 0 {
					t.Errorf("the kernel dropped %d packets", drops)
				}
				return st, err
			})
		})
	}
}

// TestLiveReadsWhatWasQueued: traffic that came while nothing read the
// interface yet, and a capture stopped before it begins, still hands on
// every exchange the kernel queued before the stop.
func TestLiveReadsWhatWasQueued(t *testing.T) {
	s := newServer(t)
	_, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	f := Filter{Ports: []int{atoi(t, port)}}
	h := openLoopback(t, f)
	s.traffic(t)
	s.check(t, port, func(add AddFunc) (Stats, error) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		return Live(ctx, h, f, add, func(time.Time) {}, nil)
	})
}

// openLoopback opens a live capture of f on loopback until the test ends;
// without the privilege it skips, unless THRIVE_REQUIRE_TCPDUMP=1 (.ci/run,
// as root).
func openLoopback(t *testing.T, f Filter) *Interface {
	t.Helper()
	h, err := OpenInterface("lo", f)
	if errors.Is(err, ErrPrivilege) && os.Getenv("THRIVE_REQUIRE_TCPDUMP") != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}
