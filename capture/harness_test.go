package capture_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/demo"
	"github.com/thrive-loadtest/thrive/traces"
)

// startDemo runs a demo backend on loopback until the test ends.
func startDemo(t *testing.T, opts ...demo.Option) string {
	t.Helper()
	srv, err := demo.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := demo.Listen(context.Background(), "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ctx, ln, time.Second) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return "http://" + ln.Addr().String()
}

// proxy is a capture running on loopback in front of a target.
type proxy struct {
	t      *testing.T
	URL    string
	path   string
	cancel context.CancelFunc
	done   chan error
	cp     *capture.Capture
}

func startProxy(t *testing.T, target string, opts ...capture.Option) *proxy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capture.thrv")
	sink := &capture.FileSink{Path: path}
	cp, err := capture.New(target, sink, opts...)
	if err != nil {
		t.Fatal(err)
	}
	sink.Meta = cp.Meta()
	if err := sink.Open(); err != nil {
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
	return readSessions(p.t, p.path)
}

func readSessions(t *testing.T, path string) []*traces.Session {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := traces.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*traces.Session
	for {
		s := new(traces.Session)
		err := r.Next(s)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, s)
	}
}

func readMeta(t *testing.T, path string) traces.Meta {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := traces.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Meta()
}
