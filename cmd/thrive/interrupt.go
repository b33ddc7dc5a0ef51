package main

import (
	"context"
	"errors"
	"os"
	"syscall"
)

// interrupt is the cause of a context a signal cancelled.
type interrupt struct{ sig os.Signal }

func (i interrupt) Error() string { return "interrupted by " + i.name() }

func (i interrupt) name() string {
	if i.sig == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}

// code is the exit code of a command a signal stopped, as shells give it:
// 128 and the signal's number.
func (i interrupt) code() int {
	if i.sig == syscall.SIGTERM {
		return 128 + int(syscall.SIGTERM)
	}
	return 128 + int(syscall.SIGINT)
}

// interrupted returns the signal that stopped ctx, if one did.
func interrupted(ctx context.Context) (interrupt, bool) {
	var i interrupt
	ok := errors.As(context.Cause(ctx), &i)
	return i, ok
}

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
