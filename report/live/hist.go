package live

import (
	"math"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// classicBounds are the upper bounds, in seconds, of the classic buckets
// of thrive's histograms: the demo backend's, up to the histograms' 60 s.
func classicBounds() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
}

// nativeSchema is the resolution of the native histograms: buckets grow
// by 2^(2^-3), about 9% (client_golang's default factor of 1.1 gives
// the same). An HDR histogram at 2 or 3 significant digits is finer, so
// each of its bars falls in one native bucket.
const nativeSchema = 3

// hist is a histogram in Prometheus's terms, made from HDR histograms of
// microseconds: classic cumulative buckets and native exponential ones.
type hist struct {
	count   uint64
	sum     float64 // seconds
	classic []uint64
	native  map[int]int64 // native bucket index → count
}

// add adds the bars of h to the histogram. A bar's values count in the
// buckets of its lowest value (which is the value recorded, for a value
// the bar holds alone), and at its middle in the sum.
func (g *hist) add(h *hdrhistogram.Histogram) {
	if g.classic == nil {
		g.classic = make([]uint64, len(classicBounds()))
		g.native = map[int]int64{}
	}
	if h == nil || h.TotalCount() == 0 {
		return
	}
	bounds := classicBounds()
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := float64(bar.From) / 1e6
		g.count += uint64(bar.Count)
		g.sum += float64(bar.From+bar.To) / 2 / 1e6 * float64(bar.Count)
		for i, b := range bounds {
			if v <= b {
				g.classic[i] += uint64(bar.Count)
				break
			}
		}
		g.native[nativeIndex(v)] += bar.Count
	}
}

// nativeIndex returns the index of the native bucket that holds v > 0:
// bucket i holds (2^((i-1)/8), 2^(i/8)].
func nativeIndex(v float64) int {
	return int(math.Ceil(math.Log2(v) * (1 << nativeSchema)))
}

// metric returns the histogram as a metric of desc with labels.
func (g *hist) metric(desc *prometheus.Desc, labels []string) prometheus.Metric {
	if g.classic == nil {
		g.add(nil)
	}
	buckets := make(map[float64]uint64, len(g.classic))
	var cum uint64
	for i, b := range classicBounds() {
		cum += g.classic[i]
		buckets[b] = cum
	}
	m, err := prometheus.NewConstHistogram(desc, g.count, g.sum, buckets, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	return nativeToo{m, g}
}

// nativeToo is a classic histogram that writes its native buckets too.
type nativeToo struct {
	prometheus.Metric
	g *hist
}

// Write writes the classic histogram, then its native schema, spans and
// bucket deltas.
func (n nativeToo) Write(out *dto.Metric) error {
	if err := n.Metric.Write(out); err != nil {
		return err
	}
	h := out.Histogram
	schema, zero, zeroCount := int32(nativeSchema), prometheus.DefNativeHistogramZeroThreshold, uint64(0)
	h.Schema, h.ZeroThreshold, h.ZeroCount = &schema, &zero, &zeroCount
	idx := make([]int, 0, len(n.g.native))
	for i := range n.g.native {
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		// An empty span says "a native histogram" to the parser, as
		// client_golang's own histograms do before their first value.
		h.PositiveSpan = []*dto.BucketSpan{{Offset: new(int32(0)), Length: new(uint32(0))}}
		return nil
	}
	slices.Sort(idx)
	var prev int64
	for k, i := range idx {
		switch {
		case k == 0:
			h.PositiveSpan = append(h.PositiveSpan, &dto.BucketSpan{Offset: new(int32(i)), Length: new(uint32(1))})
		case i == idx[k-1]+1:
			*h.PositiveSpan[len(h.PositiveSpan)-1].Length++
		default:
			h.PositiveSpan = append(h.PositiveSpan, &dto.BucketSpan{Offset: new(int32(i - idx[k-1] - 1)), Length: new(uint32(1))})
		}
		c := n.g.native[i]
		h.PositiveDelta = append(h.PositiveDelta, c-prev)
		prev = c
	}
	return nil
}
