package app

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/thrive-loadtest/thrive/replay"
)

// What the replay's engine found, written for people to read: a check's
// report, correlation rules and misses, the secrets nothing fills, where
// the load goes.

// writeCheck writes the check's divergences against target, regressions
// first, each with its cause, its fix and the flags that make it, as
// thrive replay --check prints them.
func writeCheck(w io.Writer, rep *replay.CheckReport, target string) {
	fmt.Fprintf(w, "check: %s played once against %s: %s, %s, %s\n", count(rep.Sessions, "session"), target,
		count(rep.Requests, "request"), count(rep.Regressions, "regression"), count(len(rep.Divergences)-regressionKinds(rep), "other divergence"))
	for _, d := range rep.Divergences {
		mark := ""
		if d.Regression {
			mark = " [regression]"
		}
		fmt.Fprintf(w, "\n%s: %s, %d of %d%s\n", d.Endpoint, d.What, d.Count, d.Of, mark)
		if d.Cause != "" {
			fmt.Fprintf(w, "  cause: %s\n", d.Cause)
		}
		if d.Fix != "" {
			fmt.Fprintf(w, "  fix:   %s\n", strings.ReplaceAll(d.Fix, "\n", "\n         "))
		}
		if len(d.Settings) > 0 {
			fmt.Fprintf(w, "  with:  %s\n", settingsText(d.Settings))
		}
	}
	found, missing := 0, 0
	for _, c := range rep.Correlations {
		if c.Missing > 0 {
			missing++
		} else if c.Found > 0 {
			found++
		}
	}
	fmt.Fprintf(w, "\ncorrelation: %s found the value in every live answer, %d missed some\n", count(found, "rule"), missing)
	for _, c := range rep.Correlations {
		if c.Missing > 0 {
			fmt.Fprintf(w, "  missed: %s, in %d of %d live answers\n", c.Rule, c.Missing, c.Found+c.Missing)
		}
	}
	if rep.TransportErrors > 0 {
		fmt.Fprintf(w, "%s got no answer at all\n", count(rep.TransportErrors, "request"))
	}
	if len(rep.Divergences) == 0 {
		fmt.Fprintln(w, "every answer is as recorded")
	}
}

func regressionKinds(rep *replay.CheckReport) int {
	n := 0
	for _, d := range rep.Divergences {
		if d.Regression {
			n++
		}
	}
	return n
}

// count writes n and noun, with an s unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// WriteRules writes correlation rules as a table, as thrive traces
// correlations prints them.
func WriteRules(w io.Writer, rules []replay.Rule) {
	if len(rules) == 0 {
		fmt.Fprintln(w, "no correlations: no later request sends a value an answer gave")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "sessions\tvalue from\ttaken for\tsent back by")
	for _, r := range rules {
		targets := make([]string, 0, len(r.Targets))
		for t, n := range r.Targets {
			targets = append(targets, fmt.Sprintf("%s (%d)", t, n))
		}
		slices.Sort(targets)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Count, r.Source, r.Why, strings.Join(targets, ", "))
	}
	_ = tw.Flush()
}

// writeCorrelationMisses writes the rules whose value some live answer
// did not have, most missed first.
func writeCorrelationMisses(w io.Writer, stats []replay.CorrelationStat) {
	var missed []replay.CorrelationStat
	for _, s := range stats {
		if s.Missing > 0 {
			missed = append(missed, s)
		}
	}
	slices.SortStableFunc(missed, func(a, b replay.CorrelationStat) int { return cmp.Compare(b.Missing, a.Missing) })
	const shown = 8
	for _, s := range missed[:min(len(missed), shown)] {
		fmt.Fprintf(w, "correlation: %s was not in %d of %d live answers (the requests that send it were not sent: skipped)\n",
			s.Rule, s.Missing, s.Missing+s.Found)
	}
	if len(missed) > shown {
		fmt.Fprintf(w, "correlation: %d more rules missed their value in some live answers (the result of replay --check lists each)\n", len(missed)-shown)
	}
}

// writeUnfilled warns, before a run, of the redacted values requests will
// send as placeholders, and says how to give them.
func writeUnfilled(w io.Writer, secrets []replay.Secret) {
	if len(secrets) == 0 {
		return
	}
	fmt.Fprintln(w, "warning: the trace's requests carry redacted values that nothing will fill; they go out as placeholders, and those requests will likely fail:")
	names := make([]string, len(secrets))
	for i, s := range secrets {
		names[i] = s.Name
		eps := s.Endpoints
		if len(eps) > 3 {
			eps = append(eps[:3:3], fmt.Sprintf("and %d more", len(s.Endpoints)-3))
		}
		fmt.Fprintf(w, "  %s: in %d requests (%s)\n", s.Name, s.Requests, strings.Join(eps, ", "))
	}
	fmt.Fprintf(w, "give them with --users-file users.csv, a CSV whose header names a column for each (%s) and a row per user; or record with --keep-secrets to keep them in the trace\n",
		strings.Join(names, ","))
}

// writeRoutes says where the load goes when it goes to more than the
// target, and first of all when it goes beyond loopback to hosts that came
// from the trace rather than from the user.
func writeRoutes(w io.Writer, r replay.Routes) {
	if remote := r.Remote(); len(remote) > 0 {
		fmt.Fprintf(w, "the load goes beyond this machine, to hosts taken from the trace rather than from a flag: %s (--target and --map send it elsewhere)\n", strings.Join(remote, ", "))
	}
	if len(r.Origins) > 0 {
		fmt.Fprintf(w, "the load goes to %s\n", r)
	}
}
