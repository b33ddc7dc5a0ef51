package report

import (
	"fmt"
	"strconv"
	"strings"
)

// RunParams are what a run was made of, kept in its result file so that
// compare can tell whether two runs are alike and merge whether results are
// shards of one run. The result file keeps them as a JSON object of
// strings, numbers included (its format since version 1); empty fields are
// written too, but for those of an interrupted run.
type RunParams struct {
	// Library summarizes the trace as loaded: "300 sessions, 4,120 exchanges".
	Library string `json:"library"`
	// Mix is the profile mix the plan gave: "browse 60%, chat 30%, import 10%".
	Mix string `json:"mix"`
	// Partial, in a merge of shards made on purpose from an incomplete or
	// inconsistent set (Merger.Partial), says what was missing or
	// differed; empty for a run and for a merge of all its shards.
	Partial string `json:"partial,omitempty"`
	// Pacing is "recorded" or "think".
	Pacing string `json:"pacing"`
	// RanFor is how long an interrupted run ran; empty for a whole run.
	RanFor string `json:"ran_for,omitempty"`
	// RunTime is how long the plan lasts, as a Go duration ("30s").
	RunTime string `json:"run_time"`
	// Scale is the factor recorded gaps were multiplied by.
	Scale float64 `json:"scale,string"`
	// Seed picked the sessions.
	Seed uint64 `json:"seed,string"`
	// Shard is "i/n" for one shard of a run, "" for a whole run, and
	// "n of n merged" for a merge of shards.
	Shard string `json:"shard"`
	// StoppedBy names the signal that stopped an interrupted run.
	StoppedBy string `json:"stopped_by,omitempty"`
	// Trace is the trace file's path.
	Trace string `json:"trace"`
	// Users is how many users the whole run had (all shards).
	Users int `json:"users,string"`
}

// differences lists the parameters named by names on which p and q differ,
// as "name: p's, q's".
func (p *RunParams) differences(q *RunParams, names ...string) [][3]string {
	var out [][3]string
	for _, n := range names {
		a, b := p.value(n), q.value(n)
		if a != b {
			out = append(out, [3]string{n, a, b})
		}
	}
	return out
}

// value returns the parameter of a JSON name as the result file writes it.
func (p *RunParams) value(name string) string {
	switch name {
	case "library":
		return p.Library
	case "mix":
		return p.Mix
	case "pacing":
		return p.Pacing
	case "run_time":
		return p.RunTime
	case "scale":
		return strconv.FormatFloat(p.Scale, 'g', -1, 64)
	case "seed":
		return strconv.FormatUint(p.Seed, 10)
	case "shard":
		return p.Shard
	case "trace":
		return p.Trace
	case "users":
		return strconv.Itoa(p.Users)
	}
	panic(fmt.Sprintf("report: no run parameter %q", name)) // a name written in this package
}

// shardOf splits a shard's "i/n"; a whole run is shard "" of "1".
func shardOf(s string) (string, string) {
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return "", "1"
	}
	return i, n
}
