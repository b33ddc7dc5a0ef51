package report

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"text/tabwriter"
)

// WriteSummary writes the terminal summary of a result: a table of its
// endpoints, busiest first, then the totals, the schedule lag, and what was
// as recorded or ended by silence.
func WriteSummary(w io.Writer, res *Result) {
	secs := max(res.End.Sub(res.Start).Seconds(), 1e-9)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\ttype\tname\tprofile\trequests\tfailures\tas recorded\treq/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\t\n")
	eps := slices.Clone(res.Endpoints)
	sort.SliceStable(eps, func(i, j int) bool { return eps[i].Requests > eps[j].Requests })
	for _, e := range eps {
		fmt.Fprintf(tw, "\t%s\t%s\t%s\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", e.Kind, e.Name, e.Profile, e.Requests, e.Failures,
			e.AsRecordedCount(), float64(e.Requests)/secs, e.Latency.P50Ms, e.Latency.P95Ms, e.Latency.P99Ms, e.Latency.MaxMs)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "requests %d, failures %d (%.2f%%), %.1f req/s; schedule lag p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		res.Requests, res.Failures, 100*float64(res.Failures)/float64(max(res.Requests, 1)), float64(res.Requests)/secs,
		res.Lag.P50Ms, res.Lag.P99Ms, res.Lag.MaxMs)
	if note := res.PartialNote(); note != "" {
		fmt.Fprintln(w, note)
	}
	if res.AsRecorded > 0 {
		fmt.Fprintf(w, "as recorded: %d answers of 400-499 that were 4xx in the recording too, not counted as failures\n", res.AsRecorded)
	}
	var silent int64
	for _, e := range res.Endpoints {
		silent += e.EndedBySilence
	}
	if silent > 0 {
		fmt.Fprintf(w, "WebSocket replies that ended by a silence, with no frame shaped like the recorded last one: %d\n", silent)
	}
	writeFailureKinds(w, res)
	if res.Waits > 0 {
		fmt.Fprintf(w, "waited: %d requests went out later than scheduled, after the live answers they followed when recorded (p50 %.1f ms, p99 %.1f ms, max %.1f ms)\n",
			res.Waits, res.Waited.P50Ms, res.Waited.P99Ms, res.Waited.MaxMs)
	}
	if p := res.Polls; p.Loops > 0 {
		fmt.Fprintf(w, "polls: %d loops polled until done, %.1f polls per loop, %d never done\n", p.Loops, float64(p.Polls)/float64(p.Loops), p.Unfinished)
	}
	if res.RetriedStale > 0 {
		fmt.Fprintf(w, "retried: %d requests sent again on a new connection, as a browser does, because the server had closed the kept-alive one (not failures)\n", res.RetriedStale)
	}
	writeSkipped(w, res)
}

// writeFailureKinds writes what the failures were, the most common
// first: transport errors, refusals the answers stated (a redirect to the
// login page, a form refused, {"ok":false}), failing statuses.
func writeFailureKinds(w io.Writer, res *Result) {
	if res.Failures == 0 {
		return
	}
	why := map[string]int64{}
	for _, e := range res.Endpoints {
		for k, n := range e.Errors {
			if k != ErrStopped {
				why[string(k)] += n
			}
		}
		e.failingStatuses(func(code string, n int64) { why["HTTP "+code] += n })
	}
	keys := byCount(why)
	fmt.Fprint(w, "failures by kind:")
	const shown = 6
	for i, k := range keys[:min(len(keys), shown)] {
		if i > 0 {
			fmt.Fprint(w, ",")
		}
		fmt.Fprintf(w, " %s %d", k, why[k])
	}
	if len(keys) > shown {
		fmt.Fprintf(w, " and %d more %s", len(keys)-shown, plural(len(keys)-shown, "kind", "kinds"))
	}
	fmt.Fprintln(w)
}

// byCount returns the keys of counts, the largest count first (ties in
// key order).
func byCount[K cmp.Ordered](counts map[K]int64) []K {
	keys := slices.Collect(maps.Keys(counts))
	slices.SortFunc(keys, func(a, b K) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
	return keys
}

// failingStatuses calls fn with each status of e that failed, and how
// many times: a 4xx (but 429) beyond those as recorded, a 5xx, a socket's
// handshake answered otherwise than 101.
func (e *EndpointStats) failingStatuses(fn func(code string, n int64)) {
	for code, n := range e.StatusCodes {
		if c, _ := strconv.Atoi(code); c != 429 && (c >= 400 || e.Kind == "ws-connect" && c != 101) && n > e.AsRecorded[code] {
			fn(code, n-e.AsRecorded[code])
		}
	}
}

// writeSkipped writes how many requests were not sent for want of a
// value, and the most common reasons.
func writeSkipped(w io.Writer, res *Result) {
	if res.Skipped == 0 {
		return
	}
	why := map[ErrorKind]int64{}
	for _, e := range res.Endpoints {
		for k, n := range e.Skipped {
			why[k] += n
		}
	}
	keys := byCount(why)
	fmt.Fprintf(w, "skipped: %d requests not sent because a value they needed did not come (its answer failed or lacked it):\n", res.Skipped)
	const shown = 5
	for _, k := range keys[:min(len(keys), shown)] {
		fmt.Fprintf(w, "  %d  %s\n", why[k], k)
	}
	if len(keys) > shown {
		fmt.Fprintf(w, "  … and %d more %s (the result file lists each, per endpoint)\n", len(keys)-shown, plural(len(keys)-shown, "reason", "reasons"))
	}
}

// WriteCriteria writes the criteria table and the verdict; nothing when
// there are no criteria.
func WriteCriteria(w io.Writer, vs Verdicts) {
	if len(vs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "criterion\tactual\tverdict")
	for _, v := range vs {
		verdict := "pass"
		switch {
		case v.Error != "":
			verdict = "FAIL (error)"
		case !v.Pass:
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Criterion, v.Actual, verdict)
	}
	_ = tw.Flush()
	if n := vs.Failed(); n == 0 {
		fmt.Fprintf(w, "verdict: PASS (%d criteria)\n", len(vs))
	} else {
		fmt.Fprintf(w, "verdict: FAIL (%d of %d criteria failed)\n", n, len(vs))
	}
}
