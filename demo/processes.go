package demo

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/thrive-loadtest/thrive/internal/lockedio"
)

// Environment that a demo server process passes to the processes it starts,
// so that they sign sessions and ids alike.
const (
	EnvSecret = "THRIVE_DEMO_SECRET"
	EnvEpoch  = "THRIVE_DEMO_EPOCH"
)

// SharedKeys returns the signing secret and id epoch of a backend's
// processes: from the environment in a process another started, made
// afresh in the first.
func SharedKeys() ([]byte, time.Time, error) {
	if s := os.Getenv(EnvSecret); s != "" {
		secret, err := hex.DecodeString(s)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("%s: %w", EnvSecret, err)
		}
		ns, err := strconv.ParseInt(os.Getenv(EnvEpoch), 10, 64)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("%s: %w", EnvEpoch, err)
		}
		return secret, time.Unix(0, ns), nil
	}
	secret, err := NewSecret()
	return secret, time.Now(), err
}

// Children are the processes 1..n-1 of a backend served by n processes on
// one port (SO_REUSEPORT), started by process 0.
type Children struct {
	cmds []*exec.Cmd
	n    []int // each one's index
}

// StartChildren starts processes 1..n-1 of the backend as exe with
// args(addr, i) (the serve command and its flags, telling process i to
// listen on addr as the i-th), the shared secret and epoch in its
// environment, and waits for each to say "ready". Their stderr goes to
// stderr, one write at a time. They end with SIGTERM when ctx ends, and
// are killed grace and 5 s later.
func StartChildren(ctx context.Context, exe string, args func(addr string, i int) []string, n int, addr string, secret []byte, epoch time.Time, stderr io.Writer, grace time.Duration) (*Children, error) {
	env := append(os.Environ(), EnvSecret+"="+hex.EncodeToString(secret), EnvEpoch+"="+strconv.FormatInt(epoch.UnixNano(), 10))
	ch := &Children{}
	// The children's stderr is copied by a goroutine each: one lock keeps
	// an injected writer from being written by several at once.
	locked := &lockedio.Writer{W: stderr}
	for i := 1; i < n; i++ {
		c := exec.CommandContext(ctx, exe, args(addr, i)...)
		c.Env = env
		c.Stderr = locked
		c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
		c.WaitDelay = grace + 5*time.Second
		out, err := c.StdoutPipe()
		if err == nil {
			err = c.Start()
		}
		if err == nil {
			err = awaitReady(out, 30*time.Second)
			if err != nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
		if err != nil {
			for _, started := range ch.cmds {
				_ = started.Process.Kill()
				_ = started.Wait()
			}
			return nil, fmt.Errorf("start demo process %d: %w", i, err)
		}
		ch.cmds, ch.n = append(ch.cmds, c), append(ch.n, i)
	}
	return ch, nil
}

// Wait waits for every child to exit and returns their errors, unless
// stopped reports that they were asked to stop (then their exit says
// nothing).
func (ch *Children) Wait(stopped func() bool) []error {
	var errs []error
	for k, c := range ch.cmds {
		if err := c.Wait(); err != nil && !stopped() {
			errs = append(errs, fmt.Errorf("process %d: %w", ch.n[k], err))
		}
	}
	return errs
}

// awaitReady waits for a started process to say "ready", then drains what
// else it prints in the background until it exits.
func awaitReady(out io.Reader, timeout time.Duration) error {
	ready := make(chan error, 1)
	go func() {
		br := bufio.NewReader(out)
		line, err := br.ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q instead of ready", line)
		}
		ready <- err
		// The pipe closes when the process exits, which ends this copy.
		_, _ = io.Copy(io.Discard, br)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-ready:
		return err
	case <-t.C:
		return fmt.Errorf("not ready after %v", timeout)
	}
}

// Processes are the processes that serve one backend on one port
// (SO_REUSEPORT), as thrive demo serve --processes N runs them: the first
// (Index 0) starts the others as Exe with Args.
type Processes struct {
	Listen   string
	N, Index int
	Grace    time.Duration
	// Exe and Args start another process: Args(addr, i) is the command
	// line of process i, listening on addr.
	Exe  string
	Args func(addr string, i int) []string
	// Out takes the line that says the backend listens, Warn the other
	// processes' stderr.
	Out, Warn io.Writer
}

// Serve serves srv (made with secret and epoch, SharedKeys') on the port
// until ctx ends. The first process starts the others and says where the
// backend listens once every process does, for a script may send at once;
// the others say "ready". At the end it waits for the others.
func (p *Processes) Serve(ctx context.Context, srv *Server, secret []byte, epoch time.Time) error {
	ln, err := Listen(ctx, p.Listen, p.N > 1)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	children := &Children{}
	if p.Index == 0 && p.N > 1 {
		if children, err = StartChildren(ctx, p.Exe, p.Args, p.N, addr, secret, epoch, p.Warn, p.Grace); err != nil {
			ln.Close()
			return err
		}
	}
	if p.Index == 0 {
		suffix := "es"
		if p.N == 1 {
			suffix = ""
		}
		fmt.Fprintf(p.Out, "demo backend listening on http://%s (%d process%s)\n", addr, p.N, suffix)
	} else {
		fmt.Fprintf(p.Out, "ready\n")
	}
	serveErr := srv.Serve(ctx, ln, p.Grace)
	errs := children.Wait(func() bool { return ctx.Err() != nil })
	return errors.Join(append(errs, serveErr)...)
}
