package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/traces"
)

func newTracesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "traces",
		Short: "Look into trace files: inspect, cat, filter, sample",
	}
	cmd.AddCommand(newInspectCmd(), newCatCmd(), newFilterCmd(), newSampleCmd(), newCorrelationsCmd(), newRepairCmd())
	return cmd
}

// traceFile is an open trace: the file and a Reader over it.
type traceFile struct {
	path string
	f    *os.File
	r    *traces.Reader
	size int64
}

func openTrace(path string) (*traceFile, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, usageError("%s is a directory, not a trace file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	r, err := traces.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &traceFile{path: path, f: f, r: r, size: size}, nil
}

func (t *traceFile) Close() error {
	t.r.Close()
	return t.f.Close()
}

// each calls fn with every session of the trace. A damaged file yields the
// sessions before the damage, then an error that names the file and byte.
func (t *traceFile) each(fn func(*traces.Session) error) error {
	var s traces.Session
	for {
		err := t.r.Next(&s)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w (the sessions before it were read)", t.path, err)
		}
		if err := fn(&s); err != nil {
			return err
		}
	}
}

func newCatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cat FILE",
		Short: "Print each session as one JSON object per line (JSON Lines)",
		Long: `Print each session as one JSON object per line, so jq and other tools work on any
trace. Times are in milliseconds, headers are [name, value] pairs in order, bodies are
text when they are UTF-8 and base64 (body_base64) otherwise.`,
		Example: `  thrive traces cat capture.thrv | jq -r '.exchanges[] | "\(.status) \(.method) \(.url)"'`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := openTrace(args[0])
			if err != nil {
				return err
			}
			defer t.Close()
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetEscapeHTML(false)
			return t.each(func(s *traces.Session) error { return enc.Encode(s) })
		},
	}
}

// inspection is what `traces inspect --json` prints.
type inspection struct {
	File          string         `json:"file"`
	FileBytes     int64          `json:"file_bytes"`
	Version       int            `json:"version"`
	Created       time.Time      `json:"created,omitzero"`
	Source        string         `json:"source,omitempty"`
	Target        string         `json:"target,omitempty"`
	Redacted      []string       `json:"redacted"`
	Start         time.Time      `json:"start,omitzero"`
	End           time.Time      `json:"end,omitzero"`
	SpanSeconds   float64        `json:"span_seconds"`
	Sessions      int            `json:"sessions"`
	Profiles      map[string]int `json:"profiles"`
	KeyedBy       map[string]int `json:"keyed_by"`
	Hosts         map[string]int `json:"hosts,omitempty"` // requests per scheme://host, for a forward proxy's trace
	Exchanges     int            `json:"exchanges"`
	Errors        int            `json:"errors"`
	StatusClasses map[string]int `json:"status_classes"`
	WebSockets    int            `json:"ws_connections"`
	Frames        int            `json:"ws_frames"`
	FramesSent    int            `json:"ws_frames_sent"`
	FramesRecv    int            `json:"ws_frames_received"`
	RequestBytes  int64          `json:"request_bytes"`
	ResponseBytes int64          `json:"response_bytes"`
	FrameBytes    int64          `json:"frame_bytes"`
	Truncated     int            `json:"truncated_bodies"`
	TopEndpoints  []traces.Count `json:"top_endpoints"`
	Damage        string         `json:"damage,omitempty"`
}

func newInspectCmd() *cobra.Command {
	var asJSON bool
	var top int
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Summarize a trace: span, sessions per profile, exchanges, WebSockets, bytes, top endpoints",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := openTrace(args[0])
			if err != nil {
				return err
			}
			defer t.Close()
			st := traces.Stats{}
			damage := t.each(func(s *traces.Session) error { st.Add(s); return nil })
			in := newInspection(t, &st, top)
			if damage != nil {
				in.Damage = damage.Error()
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(in); err != nil {
					return err
				}
			} else if err := printInspection(out, in); err != nil {
				return err
			}
			return damage
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	cmd.Flags().IntVar(&top, "top", 10, "how many endpoints to list")
	return cmd
}

func newInspection(t *traceFile, st *traces.Stats, top int) *inspection {
	m := t.r.Meta()
	in := &inspection{
		File: t.path, FileBytes: t.size, Version: m.Version, Created: m.Created, Source: m.Source, Target: m.Target,
		Redacted: m.Redacted, Start: st.First, End: st.Last, SpanSeconds: st.Span().Seconds(),
		Sessions: st.Sessions, Profiles: st.Profiles, KeyedBy: st.KeyedBy, Hosts: st.Hosts, Exchanges: st.Exchanges, Errors: st.Errors,
		StatusClasses: st.StatusClasses(), WebSockets: st.WebSockets,
		Frames: st.FramesSent + st.FramesReceived, FramesSent: st.FramesSent, FramesRecv: st.FramesReceived,
		RequestBytes: st.RequestBytes, ResponseBytes: st.ResponseBytes, FrameBytes: st.FrameBytes,
		Truncated: st.Truncated, TopEndpoints: st.TopEndpoints(top),
	}
	if in.Profiles == nil {
		in.Profiles = map[string]int{}
	}
	if in.KeyedBy == nil {
		in.KeyedBy = map[string]int{}
	}
	if in.Redacted == nil {
		in.Redacted = []string{}
	}
	return in
}

func printInspection(w io.Writer, in *inspection) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "trace\t%s (%s, format version %d)\n", in.File, traces.FormatBytes(in.FileBytes), in.Version)
	rec := "recorded"
	if !in.Created.IsZero() {
		rec += " " + in.Created.UTC().Format(time.RFC3339)
	}
	if in.Source != "" {
		rec += " by " + in.Source
	}
	if in.Target != "" {
		rec += ", target " + in.Target
	}
	fmt.Fprintf(tw, "origin\t%s\n", rec)
	if !in.Start.IsZero() {
		fmt.Fprintf(tw, "span\t%s → %s (%s)\n", in.Start.UTC().Format(time.RFC3339), in.End.UTC().Format(time.RFC3339),
			time.Duration(in.SpanSeconds*float64(time.Second)).Round(time.Millisecond))
	}
	fmt.Fprintf(tw, "sessions\t%d\t%s\n", in.Sessions, shares(in.Profiles, in.Sessions))
	if len(in.KeyedBy) > 0 {
		fmt.Fprintf(tw, "keyed by\t\t%s\n", shares(in.KeyedBy, in.Sessions))
	}
	if len(in.Hosts) > 0 {
		fmt.Fprintf(tw, "hosts\t%d\t%s\n", len(in.Hosts), shares(in.Hosts, in.Exchanges))
	}
	fmt.Fprintf(tw, "exchanges\t%d\t%s; transport errors %d\n", in.Exchanges, shares(in.StatusClasses, in.Exchanges), in.Errors)
	fmt.Fprintf(tw, "websockets\t%d\t%d frames: %d sent, %d received\n", in.WebSockets, in.Frames, in.FramesSent, in.FramesRecv)
	body := in.RequestBytes + in.ResponseBytes + in.FrameBytes
	ratio := ""
	if body > 0 {
		ratio = fmt.Sprintf("; the file is %.1f%% of that", 100*float64(in.FileBytes)/float64(body))
	}
	fmt.Fprintf(tw, "bytes\t%s\trequests %s, responses %s, frames %s%s\n", traces.FormatBytes(body),
		traces.FormatBytes(in.RequestBytes), traces.FormatBytes(in.ResponseBytes), traces.FormatBytes(in.FrameBytes), ratio)
	if in.Truncated > 0 {
		fmt.Fprintf(tw, "truncated\t%d\tbodies kept in part (size and SHA-256 kept)\n", in.Truncated)
	}
	if len(in.Redacted) > 0 {
		fmt.Fprintf(tw, "redacted\t%s\n", strings.Join(in.Redacted, ", "))
	}
	if len(in.TopEndpoints) > 0 {
		fmt.Fprintf(tw, "top endpoints\n")
		for _, c := range in.TopEndpoints {
			fmt.Fprintf(tw, "\t%d\t%s\n", c.Count, c.Name)
		}
	}
	if in.Damage != "" {
		fmt.Fprintf(tw, "damage\t%s\n", in.Damage)
	}
	return tw.Flush()
}

// shares renders counts as "a 60 (60.0%), b 40 (40.0%)", largest first.
func shares(m map[string]int, total int) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, n := range names {
		label := n
		if label == "" {
			label = "(none)"
		}
		parts[i] = fmt.Sprintf("%s %d (%.1f%%)", label, m[n], 100*float64(m[n])/float64(max(total, 1)))
	}
	return strings.Join(parts, ", ")
}

func newRepairCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "repair FILE",
		Short: "Fold in the sessions a killed capture kept in FILE.journal",
		Long: `A capture keeps the finished exchanges of sessions still open in FILE.journal, every
second, and removes it when it stops cleanly. After a kill -9 the journal is left: repair folds
the sessions it holds that never reached the trace into the trace (rewritten whole, with its end
record) and removes the journal. A capture refuses to start over a journal left behind.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := capture.Repair(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if rep.Damage != nil {
				fmt.Fprintf(out, "%s was read as far as it goes: %v\n", args[0], rep.Damage)
			}
			fmt.Fprintf(out, "%s: %d sessions kept, %d sessions (%d exchanges) recovered from the journal, which is removed\n",
				args[0], rep.Kept, rep.Recovered, rep.Exchanges)
			return nil
		},
	}
}
