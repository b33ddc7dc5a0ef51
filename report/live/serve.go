package live

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the handler of x's metrics in the exposition formats
// Prometheus asks for (protobuf, with native histograms; OpenMetrics;
// text), with the generator's own process and Go runtime metrics.
func (x *Exporter) Handler() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(x); err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError}), nil
}

// Server serves an Exporter's metrics at /metrics, or a Web's page.
type Server struct {
	// Addr is the address it listens on (the port chosen, for port 0).
	Addr string
	what string // what it serves, as its errors say
	srv  *http.Server
	done chan error
}

// Serve listens on addr (host:port) and serves x's metrics at /metrics
// until Close. The error says when addr cannot be listened on.
func (x *Exporter) Serve(ctx context.Context, addr string) (*Server, error) {
	h, err := x.Handler()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	return serve(ctx, addr, "metrics", mux)
}

// serve listens on addr and serves h until Close; what names what is
// served in its errors.
func serve(ctx context.Context, addr, what string, h http.Handler) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s := &Server{Addr: ln.Addr().String(), what: what, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server, giving a scrape or download in progress up to
// a second to end (a page's stream of events ends at once), and waits until it has stopped. It is safe to call more than once.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr, ok := <-s.done; ok {
		close(s.done)
		if !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	if err != nil {
		return fmt.Errorf("%s on %s: %w", s.what, s.Addr, err)
	}
	return nil
}
