package interrupt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/lockedio"
)

// TestTwoSignals sends this process SIGTERM twice: the first cancels the
// context with the signal as its cause and says so, the second closes the
// abort channel. Notify has the signals delivered to it, not to the
// process's default handler.
func TestTwoSignals(t *testing.T) {
	var stderr lockedio.Buffer
	ctx, stop := Notify(context.Background(), &stderr)
	defer stop()
	if Abort(ctx) == nil || Abort(context.Background()) != nil {
		t.Fatal("the abort channel: want one in Notify's context only")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first SIGTERM did not cancel the context")
	}
	cause := context.Cause(ctx)
	if code, ok := ExitCode(fmt.Errorf("replay: %w", cause)); !ok || code != 143 || cause.Error() != "interrupted by SIGTERM" {
		t.Fatalf("cause %v: exit %d, %v", cause, code, ok)
	}
	if s, ok := errors.AsType[Signal](cause); !ok || s.Signal() != syscall.SIGTERM {
		t.Fatalf("cause %v", cause)
	}
	select {
	case <-Abort(ctx):
		t.Fatal("aborted by one signal")
	default:
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-Abort(ctx):
	case <-time.After(10 * time.Second):
		t.Fatal("the second SIGTERM did not abort")
	}
	if !strings.Contains(stderr.String(), "thrive: interrupted by SIGTERM: stopping") {
		t.Errorf("said %q", stderr.String())
	}
	if _, ok := ExitCode(errors.New("other")); ok {
		t.Error("an error no signal caused has a signal's exit code")
	}
}

// TestHangUp: SIGHUP (the terminal that ran the command closed) stops it
// as SIGTERM does, instead of killing it unflushed, and exits 129.
func TestHangUp(t *testing.T) {
	var stderr lockedio.Buffer
	ctx, stop := Notify(context.Background(), &stderr)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGHUP did not cancel the context")
	}
	if code, ok := ExitCode(context.Cause(ctx)); !ok || code != 129 {
		t.Fatalf("cause %v: exit %d, %v", context.Cause(ctx), code, ok)
	}
}
