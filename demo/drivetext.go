package demo

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// WriteText writes the figures of a drive that took took, as thrive demo
// drive prints them.
func (st *DriveStats) WriteText(w io.Writer, took time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "sessions\t%d\t%s\n", st.Sessions, traces.Shares(st.Profiles, st.Sessions))
	fmt.Fprintf(tw, "requests\t%d\tfailures %d, in %s\n", st.Requests, st.Failures, took.Round(time.Millisecond))
	status := map[string]int{}
	for code, n := range st.Status {
		status[strconv.Itoa(code)] = n
	}
	fmt.Fprintf(tw, "status\t\t%s\n", traces.Shares(status, st.Requests))
	fmt.Fprintf(tw, "chat\t%d\tmessages over WebSockets, %d tokens streamed back\n", st.ChatMessages, st.ChatTokens)
	fmt.Fprintf(tw, "imports\t%d\tstarted, %d seen done\n", st.Imports, st.ImportsDone)
	names := make([]string, 0, len(st.Endpoints))
	for n := range st.Endpoints {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(tw, "endpoints\n")
	for _, n := range names {
		fmt.Fprintf(tw, "\t%d\t%s\n", st.Endpoints[n], n)
	}
	if len(st.Errors) > 0 {
		fmt.Fprintf(tw, "errors\n")
		for e, n := range st.Errors {
			fmt.Fprintf(tw, "\t%d\t%s\n", n, e)
		}
	}
	_ = tw.Flush()
}
