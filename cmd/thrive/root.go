package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// Exit codes. Every command maps its errors to one of these here, and only
// main calls os.Exit.
const (
	exitOK       = 0
	exitError    = 1 // thrive itself failed: bad input, I/O, a target it cannot reach
	exitUsage    = 2 // bad flags or arguments
	exitCriteria = 3 // the run finished but failed its thresholds, or compare found a regression
)

// exitErr carries the exit code an error should end the process with.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

// usageArgs makes an argument check's error a usage error (exit 2), as a
// bad flag's is.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError("%v (see thrive %s --help)", err, cmd.Name())
		}
		return nil
	}
}

func usageError(format string, args ...any) error {
	return &exitErr{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if e, ok := errors.AsType[*exitErr](err); ok {
		return e.code
	}
	if i, ok := errors.AsType[interrupt](err); ok {
		return i.code()
	}
	if _, ok := errors.AsType[*report.Failure](err); ok {
		return exitCriteria
	}
	// A run that could not start, a directory named as a trace or a trace
	// to be written over itself is bad usage.
	if _, ok := errors.AsType[*replay.SetupError](err); ok || errors.Is(err, traces.ErrDirectory) || errors.Is(err, traces.ErrSameFile) {
		return exitUsage
	}
	return exitError
}

// run executes thrive with args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "thrive: %v\n", err)
	}
	return exitCode(err)
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "thrive",
		Short: "Record real traffic, replay it as a load test",
		Long: `thrive records real user sessions (through a capture proxy, from packets or HAR files)
into compressed traces, then replays them as many concurrent users, keeping each
session's timing and the mix of user profiles, and reports latency distributions.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Cobra reports flag errors through this hook; mark them as usage errors.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitErr{code: exitUsage, err: err}
	})
	root.AddCommand(
		newCaptureCmd(),
		newReplayCmd(),
		newReportCmd(),
		newTracesCmd(),
		newCompareCmd(),
		newMergeCmd(),
		newDemoCmd(),
		newVersionCmd(),
	)
	return root
}
