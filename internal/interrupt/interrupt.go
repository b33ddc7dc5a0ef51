// Package interrupt stops a command in two steps, as thrive's do: the first
// SIGINT, SIGTERM or SIGHUP cancels its context with the signal as the cause (a
// run stops starting work, lets what is in flight finish, writes its
// results); a second closes an abort channel the context carries, and what
// is in flight is cut at once.
package interrupt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Signal is the cause of a context that a signal cancelled.
type Signal struct{ sig syscall.Signal }

func (s Signal) Error() string { return "interrupted by " + unix.SignalName(s.sig) }

// Signal is the signal: SIGINT, SIGTERM or SIGHUP.
func (s Signal) Signal() syscall.Signal { return s.sig }

// ExitCode returns the exit code of a command that err says a signal
// stopped, as shells give it: 128 and the signal's number.
func ExitCode(err error) (int, bool) {
	s, ok := errors.AsType[Signal](err)
	return 128 + int(s.sig), ok
}

type abortKey struct{}

// Abort returns the channel a second signal closes; nil (never closed)
// when ctx has none.
func Abort(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(abortKey{}).(<-chan struct{})
	return ch
}

// Notify returns a context that the first SIGINT, SIGTERM or SIGHUP (the
// terminal that ran it closed) cancels, with
// a Signal as its cause and a line on stderr, and whose Abort channel the
// second closes. stop stops listening.
func Notify(parent context.Context, stderr io.Writer) (ctx context.Context, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	ctx, cancel := context.WithCancelCause(parent)
	abort := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			cause := Signal{syscall.SIGINT}
			if s, ok := s.(syscall.Signal); ok {
				cause.sig = s
			}
			cancel(cause)
			fmt.Fprintf(stderr, "\nthrive: %v: stopping (a replay: again to cut what is in flight)\n", cause)
		case <-done:
			return
		}
		select {
		case <-sigs:
			close(abort)
		case <-done:
		}
	}()
	return context.WithValue(ctx, abortKey{}, (<-chan struct{})(abort)), func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}
