// Command thrive records real traffic and replays it as a load test.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(runInterruptible(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// runInterruptible runs a command as the binary does: the first SIGINT or
// SIGTERM cancels its context with the signal as the cause (a run stops
// starting sessions, lets requests in flight finish within its stop
// timeout, writes its results and exits 130 or 143); a second one closes
// the abort channel the context carries, and what is in flight is cut at
// once.
func runInterruptible(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	abort := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case s := <-sigs:
			cancel(interrupt{s})
			fmt.Fprintf(stderr, "\nthrive: %v: stopping (a replay: again to cut what is in flight)\n", interrupt{s})
		case <-done:
			return
		}
		select {
		case <-sigs:
			close(abort)
		case <-done:
		}
	}()
	return run(withAbort(ctx, abort), args, stdin, stdout, stderr)
}
