package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/traces"
)

// bound is one end of a time window: an absolute time, or an offset from the
// trace's first session start.
type bound struct {
	at       time.Time
	offset   time.Duration
	relative bool
	set      bool
}

func parseBound(flag, v string) (bound, error) {
	if v == "" {
		return bound{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return bound{at: t, set: true}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return bound{}, usageError("--%s %q: want an RFC 3339 time (2026-11-02T09:30:00Z) or an offset from the trace's start (90s, 1h30m)", flag, v)
	}
	return bound{offset: d, relative: true, set: true}, nil
}

func (b bound) resolve(first time.Time) time.Time {
	if b.relative {
		return first.Add(b.offset)
	}
	return b.at
}

func newFilterCmd() *cobra.Command {
	var (
		profiles []string
		from, to string
		out      string
	)
	cmd := &cobra.Command{
		Use:   "filter FILE --out NEW [--profile NAME]... [--from T] [--to T]",
		Short: "Write the sessions of a trace that match profiles and a time window to a new trace",
		Long: `Write to a new trace the sessions whose profile is one of --profile (all profiles when
none is given) and whose start lies in [--from, --to). A bound is an RFC 3339 time or an
offset from the start of the trace's first session, such as 10m.`,
		Example: "  thrive traces filter capture.thrv --profile chat --out chat.thrv\n" +
			"  thrive traces filter capture.thrv --from 10m --to 20m --out busy.thrv",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := args[0]
			if out == "" {
				return usageError("--out is required")
			}
			if same(in, out) {
				return usageError("--out %s is the input file", out)
			}
			lo, err := parseBound("from", from)
			if err != nil {
				return err
			}
			hi, err := parseBound("to", to)
			if err != nil {
				return err
			}
			var first time.Time
			if lo.relative || hi.relative {
				if first, err = firstStart(in); err != nil {
					return err
				}
			}
			want := map[string]bool{}
			for _, p := range profiles {
				for _, name := range strings.Split(p, ",") {
					if name = strings.TrimSpace(name); name != "" {
						want[name] = true
					}
				}
			}
			keep := func(s *traces.Session) bool {
				if len(want) > 0 && !want[s.Profile] {
					return false
				}
				if lo.set && s.Start.Before(lo.resolve(first)) {
					return false
				}
				return !hi.set || s.Start.Before(hi.resolve(first))
			}
			read, kept, err := filterTrace(in, out, keep)
			fmt.Fprintf(cmd.OutOrStdout(), "kept %d of %d sessions in %s\n", kept, read, out)
			return err
		},
	}
	cmd.Flags().StringSliceVar(&profiles, "profile", nil, "keep sessions of these profiles (repeat or separate with commas)")
	cmd.Flags().StringVar(&from, "from", "", "keep sessions that start at or after this time or offset")
	cmd.Flags().StringVar(&to, "to", "", "keep sessions that start before this time or offset")
	cmd.Flags().StringVarP(&out, "out", "o", "", "the trace file to write")
	return cmd
}

func same(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// firstStart reads a trace once for the start of its earliest session.
func firstStart(path string) (time.Time, error) {
	t, err := openTrace(path)
	if err != nil {
		return time.Time{}, err
	}
	defer t.Close()
	var first time.Time
	err = t.each(func(s *traces.Session) error {
		if !s.Start.IsZero() && (first.IsZero() || s.Start.Before(first)) {
			first = s.Start
		}
		return nil
	})
	return first, err
}

// filterTrace copies the sessions of in that keep accepts into a new trace at
// out, with the same header. The new file is complete once filterTrace
// returns, even when in was damaged.
func filterTrace(in, out string, keep func(*traces.Session) bool) (read, kept int, err error) {
	t, err := openTrace(in)
	if err != nil {
		return 0, 0, err
	}
	defer t.Close()
	f, err := os.Create(out)
	if err != nil {
		return 0, 0, err
	}
	w, err := traces.NewWriter(f, t.r.Meta())
	if err != nil {
		f.Close()
		return 0, 0, fmt.Errorf("%s: %w", out, err)
	}
	read, kept, cerr := traces.Copy(w, t.r, keep)
	if _, damaged := errors.AsType[*traces.FormatError](cerr); damaged {
		cerr = fmt.Errorf("%s: %w (the sessions before it were copied)", in, cerr)
	} else if cerr != nil {
		cerr = fmt.Errorf("%s: %w", out, cerr)
	}
	werr := w.Close()
	if err := f.Sync(); werr == nil && err != nil {
		werr = err
	}
	if err := f.Close(); werr == nil && err != nil {
		werr = err
	}
	if werr != nil {
		return read, kept, fmt.Errorf("%s: %w", out, werr)
	}
	return read, kept, cerr
}
