package traces

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Inspection summarizes a trace file, as thrive traces inspect prints it;
// its JSON is what inspect --json prints, a schema kept stable.
type Inspection struct {
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
	TopEndpoints  []Count        `json:"top_endpoints"`
	// Strays counts the requests for sub-resources that no visit claimed,
	// kept apart and not replayed; Continuing the sessions that began with
	// an identity an earlier visit was given; Placed the exchanges by what
	// placed them in their session; Visits, per session, what keyed it and
	// its requests placed by time alone.
	Strays     int            `json:"strays"`
	Continuing int            `json:"continuing_sessions"`
	Partial    int            `json:"partial_sessions,omitempty"`
	Placed     map[string]int `json:"placed,omitempty"`
	Visits     []Visit        `json:"visits,omitempty"`
	Damage     string         `json:"damage,omitempty"`
}

// InspectFile opens the trace file at path with opts and inspects it
// (Inspect): a file that does not open is a nil Inspection and the error,
// a damaged one the Inspection of what was read and the damage.
func InspectFile(path string, top int, opts ...OpenOption) (*Inspection, error) {
	t, err := Open(path, opts...)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return Inspect(t, top)
}

// Inspect reads every session of t and summarizes them with the top
// endpoints. A damaged file is summarized as far as it was read, Damage
// saying why, and its error returned too.
func Inspect(t *File, top int) (*Inspection, error) {
	var st Stats
	var damage error
	for s, err := range t.Sessions() {
		if err != nil {
			damage = err
			break
		}
		st.Add(s)
	}
	m := t.Meta()
	in := &Inspection{
		File: t.Path, FileBytes: t.Size, Version: m.Version, Created: m.Created, Source: m.Source, Target: m.Target,
		Redacted: m.Redacted, Start: st.First, End: st.Last, SpanSeconds: st.Span().Seconds(),
		Sessions: st.Sessions, Profiles: st.Profiles, KeyedBy: st.KeyedBy, Hosts: st.Hosts, Exchanges: st.Exchanges, Errors: st.Errors,
		StatusClasses: st.StatusClasses(), WebSockets: st.WebSockets,
		Frames: st.FramesSent + st.FramesReceived, FramesSent: st.FramesSent, FramesRecv: st.FramesReceived,
		RequestBytes: st.RequestBytes, ResponseBytes: st.ResponseBytes, FrameBytes: st.FrameBytes,
		Truncated: st.Truncated, TopEndpoints: st.TopEndpoints(top),
		Strays: st.Strays, Continuing: st.Continuing, Partial: st.Partial, Placed: st.Placed, Visits: st.Visits,
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
	if damage != nil {
		in.Damage = damage.Error()
	}
	return in, damage
}

// WriteText prints the inspection as thrive traces inspect does.
func (in *Inspection) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "trace\t%s (%s, format version %d)\n", in.File, FormatBytes(in.FileBytes), in.Version)
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
	fmt.Fprintf(tw, "sessions\t%d\t%s\n", in.Sessions, Shares(in.Profiles, in.Sessions))
	if len(in.KeyedBy) > 0 {
		fmt.Fprintf(tw, "keyed by\t\t%s\n", Shares(in.KeyedBy, in.Sessions))
	}
	if len(in.Hosts) > 0 {
		fmt.Fprintf(tw, "hosts\t%d\t%s\n", len(in.Hosts), Shares(in.Hosts, in.Exchanges))
	}
	fmt.Fprintf(tw, "exchanges\t%d\t%s; transport errors %d\n", in.Exchanges, Shares(in.StatusClasses, in.Exchanges), in.Errors)
	fmt.Fprintf(tw, "websockets\t%d\t%d frames: %d sent, %d received\n", in.WebSockets, in.Frames, in.FramesSent, in.FramesRecv)
	body := in.RequestBytes + in.ResponseBytes + in.FrameBytes
	ratio := ""
	if body > 0 {
		ratio = fmt.Sprintf("; the file is %.1f%% of that", 100*float64(in.FileBytes)/float64(body))
	}
	fmt.Fprintf(tw, "bytes\t%s\trequests %s, responses %s, frames %s%s\n", FormatBytes(body),
		FormatBytes(in.RequestBytes), FormatBytes(in.ResponseBytes), FormatBytes(in.FrameBytes), ratio)
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
	in.writeVisits(tw)
	if in.Damage != "" {
		fmt.Fprintf(tw, "damage\t%s\n", in.Damage)
	}
	return tw.Flush()
}

// maxVisitsShown bounds the sessions WriteText lists; --json has them all
// (up to MaxVisits).
const maxVisitsShown = 20

// writeVisits prints how the sessions were cut: what placed the
// exchanges, the strays, and per session its evidence and the requests
// placed by time alone, those sessions first.
func (in *Inspection) writeVisits(w io.Writer) {
	cut := len(in.Visits) > 0 && in.Visits[0].Evidence != "" // not a trace of a thrive before format version 3, nor a synthetic one
	if cut {
		fmt.Fprintf(w, "placed by\t\t%s\n", Shares(in.Placed, in.Exchanges))
	}
	if in.Strays > 0 {
		fmt.Fprintf(w, "strays\t%d\tsub-resource requests no visit claimed: kept apart, not replayed\n", in.Strays)
	}
	if in.Partial > 0 {
		fmt.Fprintf(w, "partial\t%d\tsessions written in parts of which the file lacks some (a killed capture: traces repair; a rotation: the other file)\n", in.Partial)
	}
	if in.Continuing > 0 {
		fmt.Fprintf(w, "continuing\t%d\tsessions began with an identity given before them: replayed with the user's earlier state\n", in.Continuing)
	}
	if !cut {
		return
	}
	vs := slices.Clone(in.Visits)
	slices.SortStableFunc(vs, func(a, b Visit) int { return len(b.Weak) - len(a.Weak) })
	fmt.Fprintf(w, "visits\n")
	for i, v := range vs {
		if i == maxVisitsShown {
			fmt.Fprintf(w, "\t…\t%d more (the JSON form lists up to %d)\n", len(vs)-i, MaxVisits)
			break
		}
		more := ""
		if v.Continues {
			more = ", continues"
		}
		fmt.Fprintf(w, "\t%s\t%s, %d exchanges: %s%s\n", v.ID, cmp.Or(v.Profile, "(none)"), v.Exchanges, v.Evidence, more)
		for _, weak := range v.Weak {
			fmt.Fprintf(w, "\t\tweak: %s\n", weak)
		}
	}
}

// Shares renders counts as "a 60 (60.0%), b 40 (40.0%)", largest first.
func Shares(m map[string]int, total int) string {
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
