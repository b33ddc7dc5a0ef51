// Command thrive records real traffic and replays it as a load test.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/thrive-loadtest/thrive/internal/app"
	"github.com/thrive-loadtest/thrive/internal/hint"
	"github.com/thrive-loadtest/thrive/internal/interrupt"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

// main runs a command as the binary does: stopped in two steps by signals
// (internal/interrupt): the first lets a run finish what is in flight
// within its stop timeout, write its results and exit 130, 143 or 129; the
// second cuts what is in flight at once.
func main() {
	ctx, stop := interrupt.Notify(context.Background(), os.Stderr)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes. Every command's errors map to one of these in exitCode, and
// only main calls os.Exit. A signal that stopped a command adds 128 to
// its number, as shells do.
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

func usageError(format string, args ...any) error {
	return &exitErr{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// usageArgs makes an argument check's error a usage error, as a bad
// flag's is.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError("%v (see thrive %s --help)", err, cmd.Name())
		}
		return nil
	}
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if e, ok := errors.AsType[*exitErr](err); ok {
		return e.code
	}
	if code, ok := interrupt.ExitCode(err); ok {
		return code
	}
	if _, ok := errors.AsType[*report.Failure](err); ok {
		return exitCriteria
	}
	// A run that could not start, a directory named as a trace or a trace
	// to be written over itself is bad usage.
	if _, ok := errors.AsType[*app.SetupError](err); ok || errors.Is(err, traces.ErrDirectory) || errors.Is(err, traces.ErrSameFile) {
		return exitUsage
	}
	return exitError
}

// run executes thrive with args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
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
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitErr{code: exitUsage, err: err} })
	root.AddCommand(newCaptureCmd(), newReplayCmd(), newReportCmd(), newTracesCmd(), newCompareCmd(), newMergeCmd(), newDemoCmd(), newImportCmd(), newVersionCmd())
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(context.WithValue(ctx, argsKey{}, args))
	if err != nil {
		fmt.Fprintf(stderr, "thrive: %v\n", err)
		for _, h := range hint.Of(err) {
			fmt.Fprintf(stderr, "hint: %s\n", h)
		}
	}
	return exitCode(err)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of thrive and of its trace format",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), app.Version())
			return err
		},
	}
}

// optionFlag declares a flag of no value that adds opt to *opts when it is
// given (and true).
func optionFlag[O any](fl *pflag.FlagSet, opts *[]O, name, usage string, opt O) {
	fl.BoolFunc(name, usage, func(v string) error {
		on, err := strconv.ParseBool(v)
		if on {
			*opts = append(*opts, opt)
		}
		return err
	})
}

// parsedFlag declares a flag whose every value parse makes into an option
// added to *opts; parse's error is the flag's.
func parsedFlag[O any](fl *pflag.FlagSet, opts *[]O, name, usage string, parse func(string) (O, error)) {
	fl.Func(name, usage, func(v string) error {
		o, err := parse(v)
		if err == nil {
			*opts = append(*opts, o)
		}
		return err
	})
}

// valueFlag declares a flag whose value parse reads into *v.
func valueFlag[T any](fl *pflag.FlagSet, v *T, name, usage string, parse func(string) (T, error)) {
	fl.Func(name, usage, func(s string) (err error) {
		*v, err = parse(s)
		return err
	})
}

// sizeFlag declares a flag of a size in bytes (traces.ParseBytes: 1MiB,
// 100MB).
func sizeFlag(fl *pflag.FlagSet, n *int64, name, value, usage string) {
	*n, _ = traces.ParseBytes(value)
	fl.Func(name, usage+" (default "+value+")", func(s string) (err error) {
		*n, err = traces.ParseBytes(s)
		return err
	})
}
