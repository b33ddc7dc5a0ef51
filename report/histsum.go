package report

import "github.com/HdrHistogram/hdrhistogram-go"

// sumOf returns a histogram of every value recorded in hs: their counts
// added bucket by bucket when they share one geometry (as those newHist
// makes do), which is many times faster than Merge's walk of each one's
// values; Merge for those that do not.
func sumOf(hs []*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	var sum *hdrhistogram.Snapshot
	var odd []*hdrhistogram.Histogram
	for _, h := range hs {
		s := h.Export() // a copy of its counts
		switch {
		case sum == nil:
			sum = s
		case s.LowestTrackableValue == sum.LowestTrackableValue && s.HighestTrackableValue == sum.HighestTrackableValue &&
			s.SignificantFigures == sum.SignificantFigures && len(s.Counts) == len(sum.Counts):
			for i, c := range s.Counts {
				sum.Counts[i] += c
			}
		default:
			odd = append(odd, h)
		}
	}
	if sum == nil {
		return newHist()
	}
	out := hdrhistogram.Import(sum)
	for _, h := range odd {
		out.Merge(h)
	}
	return out
}

// quantiles returns the values of h at the percentiles ps, in one pass
// over its counts (ValueAtQuantile walks them once for each).
func quantiles(h *hdrhistogram.Histogram, ps ...float64) []int64 {
	return h.ValueAtPercentilesSlice(ps)
}
