package capture_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
)

// proxy is a capture running on loopback in front of a target.
type proxy struct {
	t      testing.TB
	URL    string
	path   string
	cancel context.CancelFunc
	done   chan error
	cp     *capture.Capture
}

func startProxy(t testing.TB, target string, opts ...capture.Option) *proxy {
	t.Helper()
	if os.Getenv("THRIVE_CAPTURE_LOOP") == "1" {
		// .ci/run runs the package's tests again on the event loops.
		opts = append(opts, capture.WithEventLoop())
	}
	path := filepath.Join(t.TempDir(), "capture.thrv")
	sink := &capture.FileSink{Path: path}
	cp, err := capture.New(target, sink, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Open(); err != nil {
		t.Fatal(err)
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{t: t, URL: "http://" + ln.Addr().String(), path: path, cancel: cancel, done: make(chan error, 1), cp: cp}
	go func() { p.done <- cp.Run(ctx, ln) }()
	t.Cleanup(func() {
		if p.cancel != nil {
			p.stop()
		}
	})
	return p
}

// stop ends the capture as Ctrl-C would and returns the sessions it wrote.
func (p *proxy) stop() []*traces.Session {
	p.t.Helper()
	p.cancel()
	p.cancel = nil
	if err := <-p.done; err != nil {
		p.t.Fatalf("capture: %v", err)
	}
	return tracetest.ReadFile(p.t, p.path)
}
