package apptest

import (
	"context"
	"net"
	"path/filepath"
	"testing"

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
	path := filepath.Join(tb.TempDir(), "capture.thrv")
	sink := &capture.FileSink{Path: path}
	cp, err := capture.New(target, sink, opts...)
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
