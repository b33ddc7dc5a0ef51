package report

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// A Failure is the error of a run or a comparison that ended but did not
// meet what was asked of it: criteria missed, a ladder phase that failed,
// a regression against a baseline. thrive exits 3 on one, 1 on any other
// error.
type Failure struct{ What string }

func (f *Failure) Error() string { return f.What }

// Failed returns a Failure when the comparison's verdict is a regression,
// else nil.
func (c *Comparison) Failed() error {
	if c.Verdict != Regression {
		return nil
	}
	var why []string
	behaved := slices.ContainsFunc(c.Behaviour, func(d Difference) bool { return d.Verdict == Regression })
	if !behaved || c.Overall.Verdict == Regression || slices.ContainsFunc(c.Endpoints, func(ch Change) bool { return ch.Verdict == Regression }) {
		why = append(why, fmt.Sprintf("p95 slower by more than %s%%, significantly", strconv.FormatFloat(100*c.MaxRegress, 'f', -1, 64)))
	}
	for _, d := range c.Behaviour {
		if d.Verdict == Regression {
			why = append(why, fmt.Sprintf("%s %s: %s %s", d.Name, d.Profile, d.What, d.Detail))
			if len(why) == 4 {
				why = append(why, "…")
				break
			}
		}
	}
	return &Failure{"the candidate regressed (" + strings.Join(why, "; ") + ")"}
}

// ParseShare reads a share such as thrive compare's --max-regression: a
// percentage (10%) or a fraction (0.1).
func ParseShare(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: want a percentage such as 10%%", s)
	}
	if strings.HasSuffix(s, "%") {
		v /= 100
	}
	return v, nil
}

// Write writes the comparison as text, markdown (a pull request's
// comment) or json.
func (c *Comparison) Write(w io.Writer, format string) error {
	switch format {
	case "text", "markdown":
		c.WriteText(w, format == "markdown")
		return nil
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	}
	return fmt.Errorf("format %q: want text, markdown or json", format)
}
