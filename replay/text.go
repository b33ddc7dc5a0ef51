package replay

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// What replay writes for people to read: a check's report, correlation
// rules and misses, the secrets nothing fills.

// WriteText writes the check's divergences against target, regressions
// first, each with its cause and fix, as thrive replay --check prints them.
func (rep *CheckReport) WriteText(w io.Writer, target string) {
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

func regressionKinds(rep *CheckReport) int {
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
func WriteRules(w io.Writer, rules []Rule) {
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

// WriteCorrelationMisses writes the rules whose value some live answer
// did not have, most missed first.
func WriteCorrelationMisses(w io.Writer, stats []CorrelationStat) {
	var missed []CorrelationStat
	for _, s := range stats {
		if s.Missing > 0 {
			missed = append(missed, s)
		}
	}
	slices.SortStableFunc(missed, func(a, b CorrelationStat) int { return cmp.Compare(b.Missing, a.Missing) })
	const shown = 8
	for _, s := range missed[:min(len(missed), shown)] {
		fmt.Fprintf(w, "correlation: %s was not in %d of %d live answers (the requests that send it were not sent: skipped)\n",
			s.Rule, s.Missing, s.Missing+s.Found)
	}
	if len(missed) > shown {
		fmt.Fprintf(w, "correlation: %d more rules missed their value in some live answers (the result of replay --check lists each)\n", len(missed)-shown)
	}
}

// WriteUnfilled warns, before a run, of the redacted values requests will
// send as placeholders, and says how to give them.
func WriteUnfilled(w io.Writer, secrets []Secret) {
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
