package main

import (
	"context"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// interrupt is the cause of a context a signal cancelled.
type interrupt struct{ sig os.Signal }

func (i interrupt) Error() string { return "interrupted by " + unix.SignalName(i.Signal()) }

// Signal is the signal (SIGINT or SIGTERM), named in an interrupted run's
// result.
func (i interrupt) Signal() syscall.Signal {
	if i.sig == syscall.SIGTERM {
		return syscall.SIGTERM
	}
	return syscall.SIGINT
}

// code is the exit code of a command a signal stopped, as shells give it:
// 128 and the signal's number.
func (i interrupt) code() int { return 128 + int(i.Signal()) }

type abortKey struct{}

// withAbort gives ctx the channel a second signal closes.
func withAbort(ctx context.Context, ch <-chan struct{}) context.Context {
	return context.WithValue(ctx, abortKey{}, ch)
}

// abortOf returns the channel a second signal closes; nil (never closed)
// when ctx has none.
func abortOf(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(abortKey{}).(<-chan struct{})
	return ch
}
