package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

func newSampleCmd() *cobra.Command {
	var (
		n    int
		seed uint64
		out  string
	)
	cmd := &cobra.Command{
		Use:   "sample --out FILE",
		Short: "Write a synthetic trace of browse, chat and import sessions (for trying thrive out)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("--out is required")
			}
			if n < 0 {
				return usageError("--sessions %d: want 0 or more", n)
			}
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			defer f.Close()
			w, err := traces.NewWriter(f, traces.Meta{Created: time.Now().UTC(), Source: "sample"})
			if err != nil {
				return err
			}
			c := synth.New(seed)
			for range n {
				if err := w.Write(c.Session()); err != nil {
					return fmt.Errorf("%s: %w", out, err)
				}
			}
			if err := w.Close(); err != nil {
				return fmt.Errorf("%s: %w", out, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("%s: %w", out, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("%s: %w", out, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d sessions to %s (%s)\n", n, out, traces.FormatBytes(w.Size()))
			return nil
		},
	}
	cmd.Flags().IntVarP(&n, "sessions", "n", 100, "how many sessions")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "the same seed writes the same sessions")
	cmd.Flags().StringVarP(&out, "out", "o", "", "the trace file to write")
	return cmd
}
