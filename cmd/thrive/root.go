package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes. Every command maps its errors to one of these here, and only
// main calls os.Exit.
const (
	exitOK       = 0
	exitError    = 1 // thrive itself failed: bad input, I/O, a target it cannot reach
	exitUsage    = 2 // bad flags or arguments, or a command not built yet
	exitCriteria = 3 // the run finished but failed its thresholds
)

// exitErr carries the exit code an error should end the process with.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

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
		notBuilt("compare", "Tell whether a new build regressed, from two result files", 8),
		newMergeCmd(),
		newDemoCmd(),
		newVersionCmd(),
	)
	return root
}

// notBuilt is a command whose issue has not landed: it says so and exits 2.
func notBuilt(name, short string, issue int) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Short:              short + " (not built yet)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return usageError("%s is not built yet (issue #%d)", name, issue)
		},
	}
}
