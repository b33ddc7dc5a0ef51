package report

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Merge combines the results of the shards of one run (--shard i/n)
// exactly: histograms are added bucket by bucket, so a merged percentile is
// the percentile of all the shards' samples together; counts add up; the
// per-second series are aligned by wall-clock time. It refuses results of
// different traces, seeds, targets or shard counts, or the same shard
// twice, saying which.
func Merge(rs []*Result) (*Result, error) {
	if len(rs) == 0 {
		return nil, errors.New("nothing to merge")
	}
	first := rs[0]
	seen := map[string]int{}
	for i, r := range rs {
		if d := r.Params.differences(&first.Params, "trace", "library", "seed", "pacing", "scale"); len(d) > 0 {
			return nil, fmt.Errorf("result %d has %s %q, result 1 %q: not shards of one run", i+1, d[0][0], d[0][1], d[0][2])
		}
		if r.Target != first.Target {
			return nil, fmt.Errorf("result %d ran against %s, result 1 against %s", i+1, r.Target, first.Target)
		}
		shard, n := shardOf(r.Params.Shard)
		_, n1 := shardOf(first.Params.Shard)
		if n != n1 {
			return nil, fmt.Errorf("result %d is shard %s, result 1 %s: different shard counts", i+1, r.Params.Shard, first.Params.Shard)
		}
		if shard == "" && len(rs) > 1 {
			return nil, fmt.Errorf("result %d is a whole run, not a shard (--shard i/n): there is nothing to merge it with", i+1)
		}
		if j, dup := seen[shard]; dup {
			return nil, fmt.Errorf("results %d and %d are both shard %s", j+1, i+1, r.Params.Shard)
		}
		seen[shard] = i
	}
	m := &Result{Version: FormatVersion, Target: first.Target, Label: first.Label, Start: first.Start, End: first.End, Params: first.Params}
	_, n := shardOf(first.Params.Shard)
	m.Params.Shard = fmt.Sprintf("%d of %s merged", len(rs), n)
	for _, r := range rs {
		if r.Start.Before(m.Start) {
			m.Start = r.Start
		}
		if r.End.After(m.End) {
			m.End = r.End
		}
	}
	type acc struct {
		e                  EndpointStats
		lat, service, byte *hdrhistogram.Histogram
	}
	endpoints := map[[3]string]*acc{}
	var order [][3]string
	lag, waited := newHist(), newHist()
	seconds := map[int64]*Second{}
	secHists := map[int64]*hdrhistogram.Histogram{}
	secLags := map[int64]float64{}
	users := 0
	for _, r := range rs {
		users = max(users, r.Params.Users)
		m.Requests += r.Requests
		m.Failures += r.Failures
		m.AsRecorded += r.AsRecorded
		m.Skipped += r.Skipped
		m.RetriedStale += r.RetriedStale
		m.Polls.Loops += r.Polls.Loops
		m.Polls.Polls += r.Polls.Polls
		m.Polls.Unfinished += r.Polls.Unfinished
		m.Clamped += r.Clamped
		m.WebSocket.Connections += r.WebSocket.Connections
		m.WebSocket.FramesSent += r.WebSocket.FramesSent
		m.WebSocket.FramesReceived += r.WebSocket.FramesReceived
		if err := mergeInto(lag, r.LagHist, "lag"); err != nil {
			return nil, err
		}
		if len(r.WaitedHist) > 0 {
			if err := mergeInto(waited, r.WaitedHist, "waited"); err != nil {
				return nil, err
			}
		}
		for _, e := range r.Endpoints {
			k := [3]string{e.Kind, e.Name, e.Profile}
			a := endpoints[k]
			if a == nil {
				a = &acc{e: EndpointStats{Kind: e.Kind, Name: e.Name, Profile: e.Profile, StatusCodes: map[string]int64{}},
					lat: newHist(), service: newHist(), byte: newHist()}
				endpoints[k] = a
				order = append(order, k)
			}
			a.e.Requests += e.Requests
			a.e.Failures += e.Failures
			a.e.EndedBySilence += e.EndedBySilence
			for why, n := range e.Skipped {
				if a.e.Skipped == nil {
					a.e.Skipped = map[ErrorKind]int64{}
				}
				a.e.Skipped[why] += n
			}
			for c, n := range e.AsRecorded {
				if a.e.AsRecorded == nil {
					a.e.AsRecorded = map[string]int64{}
				}
				a.e.AsRecorded[c] += n
			}
			for c, n := range e.StatusCodes {
				a.e.StatusCodes[c] += n
			}
			for c, n := range e.Errors {
				if a.e.Errors == nil {
					a.e.Errors = map[ErrorKind]int64{}
				}
				a.e.Errors[c] += n
			}
			for _, h := range []struct {
				dst *hdrhistogram.Histogram
				src []byte
			}{{a.lat, e.Hist}, {a.service, e.ServiceHist}, {a.byte, e.FirstByteHist}} {
				if err := mergeInto(h.dst, h.src, e.Name); err != nil {
					return nil, err
				}
			}
		}
		// Seconds by wall-clock time from the merged start.
		shift := int64(r.Start.Sub(m.Start) / time.Second)
		for _, s := range r.Series {
			at := s.Offset + shift
			ms := seconds[at]
			if ms == nil {
				ms = &Second{Offset: at}
				seconds[at] = ms
				secHists[at] = newSecondHist()
			}
			ms.Requests += s.Requests
			ms.Failures += s.Failures
			ms.Users += s.Users
			secLags[at] = max(secLags[at], s.LagP99) // an upper bound: shards keep no per-second lag histogram
			if err := mergeInto(secHists[at], s.Hist, fmt.Sprintf("second %d", s.Offset)); err != nil {
				return nil, err
			}
		}
	}
	if users > 0 {
		m.Params.Users = users
	}
	m.Lag, m.LagHist = latencyOf(lag), encode(lag)
	if waited.TotalCount() > 0 {
		m.Waits, m.Waited, m.WaitedHist = waited.TotalCount(), latencyOf(waited), encode(waited)
	}
	slices.SortFunc(order, func(a, b [3]string) int { return strings.Compare(a[0]+a[1]+a[2], b[0]+b[1]+b[2]) })
	for _, k := range order {
		a := endpoints[k]
		a.e.Latency, a.e.Hist = latencyOf(a.lat), encode(a.lat)
		a.e.ServiceLatency, a.e.ServiceHist = latencyOf(a.service), encode(a.service)
		a.e.FirstByte, a.e.FirstByteHist = latencyOf(a.byte), encode(a.byte)
		m.Endpoints = append(m.Endpoints, a.e)
	}
	offsets := make([]int64, 0, len(seconds))
	for at := range seconds {
		offsets = append(offsets, at)
	}
	slices.Sort(offsets)
	for _, at := range offsets {
		s := seconds[at]
		if h := secHists[at]; h.TotalCount() > 0 {
			s.Latency, s.Hist = latencyOf(h), encode(h)
		}
		s.LagP99 = secLags[at]
		m.Series = append(m.Series, *s)
	}
	return m, nil
}

// mergeInto adds the histogram enc, if any, to dst.
func mergeInto(dst *hdrhistogram.Histogram, enc []byte, what string) error {
	h, err := decodeHist(enc, what)
	if err != nil {
		return err
	}
	dst.Merge(h)
	return nil
}
