package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/traces"
)

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
			var flt traces.Filter
			var err error
			if flt.From, err = traces.ParseBound(from); err != nil {
				return usageError("--from %v", err)
			}
			if flt.To, err = traces.ParseBound(to); err != nil {
				return usageError("--to %v", err)
			}
			for _, p := range profiles {
				for name := range strings.SplitSeq(p, ",") {
					if name = strings.TrimSpace(name); name != "" {
						flt.Profiles = append(flt.Profiles, name)
					}
				}
			}
			read, kept, err := traces.FilterFile(in, out, flt)
			if errors.Is(err, traces.ErrDirectory) {
				return usageError("%v", err)
			}
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
