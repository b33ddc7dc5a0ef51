package apptest

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
)

// Record runs a capture in front of target with opts (the default
// redaction unless capture.WithKeepSecrets is among them), calls drive with
// the capture's base URL, stops the capture as Ctrl-C would and returns the
// sessions it wrote, and the trace file's path.
func Record(tb testing.TB, target string, drive func(base string), opts ...capture.Option) ([]*traces.Session, string) {
	tb.Helper()
	return recordThrough(tb, target, drive, opts)
}

// RecordForward runs a forward proxy capture (no target: the browser or
// app is pointed at it, every host in scope recorded) with opts, calls
// drive with the proxy's address (http://127.0.0.1:PORT), stops the
// capture as Ctrl-C would and returns the sessions it wrote. Its CA is made
// for the test; plain HTTP origins need no trust in it.
func RecordForward(tb testing.TB, drive func(proxy string), opts ...capture.Option) []*traces.Session {
	tb.Helper()
	ca, _, err := capture.NewCA(time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	sessions, _ := recordThrough(tb, "", drive, append([]capture.Option{capture.WithCA(ca)}, opts...))
	return sessions
}

// recordThrough runs a capture of target ("" for a forward proxy) on a
// loopback port while drive runs, and reads back what it wrote.
func recordThrough(tb testing.TB, target string, drive func(addr string), opts []capture.Option) ([]*traces.Session, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "capture.thrv")
	cp, err := capture.New(target, &capture.FileSink{Path: path}, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := cp.Open(); err != nil {
		tb.Fatal(err)
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx, ln) }()
	drive("http://" + ln.Addr().String())
	cancel()
	if err := <-done; err != nil {
		tb.Fatalf("capture: %v", err)
	}
	return tracetest.ReadFile(tb, path), path
}
