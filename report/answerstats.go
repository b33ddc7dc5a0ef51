package report

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// AnswerStats sketch what an endpoint answered: its successful (2xx) HTTP
// answers, or its WebSocket replies. The sketch is bounded whatever the
// run's length (maxFields paths, maxHeaders header keys, two small
// histograms) and merges exactly across shards: counts add, histograms
// merge. compare holds two runs' sketches against each other to find
// what a build changed in what users get.
type AnswerStats struct {
	// Answers counts the answers sketched; JSON, those whose body (a
	// reply's last frame that held JSON) was JSON.
	Answers int64 `json:"answers"`
	JSON    int64 `json:"json,omitempty"`
	// Fields are the key paths of the JSON answers ($.items[].id, arrays
	// folded), by path: how many answers had each, and with what types
	// of value. FieldsDropped counts the paths seen past the bound.
	Fields        []FieldStats `json:"fields,omitempty"`
	FieldsDropped int64        `json:"fields_dropped,omitempty"`
	// Headers counts the answers that had each header that matters to
	// clients: "content-type: application/json", "cache-control",
	// "location", "set-cookie: sessionid".
	Headers map[string]int64 `json:"headers,omitempty"`
	// Size is the bodies' length in bytes as they came; Frames, a
	// WebSocket reply's frames.
	Size       Counts `json:"size_bytes"`
	SizeHist   []byte `json:"size_histogram,omitempty"`
	Frames     Counts `json:"frames,omitzero"`
	FramesHist []byte `json:"frames_histogram,omitempty"`
}

// FieldStats is one key path of an endpoint's JSON answers: how many had
// it, and how many had a value of each type there ("string", "number",
// "object", "array", "bool", "null"; an answer whose array held several
// types counts for each).
type FieldStats struct {
	Path    string           `json:"path"`
	Answers int64            `json:"answers"`
	Types   map[string]int64 `json:"types"`
}

// Counts are quantiles of a distribution of counts (bytes, frames).
type Counts struct {
	P50 int64 `json:"p50"`
	P90 int64 `json:"p90"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
}

// Bounds of an endpoint's sketch.
const (
	maxFields  = 512
	maxHeaders = 32
	maxCount   = 1 << 40 // histograms of counts: 1 to a TiB
)

func newCountHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, maxCount, 2) }

func countsOf(h *hdrhistogram.Histogram) Counts {
	if h.TotalCount() == 0 {
		return Counts{}
	}
	q := quantiles(h, 50, 90, 99, 100)
	return Counts{P50: q[0], P90: q[1], P99: q[2], Max: q[3]}
}

// answerSketch is an endpoint's AnswerStats while the run records.
type answerSketch struct {
	answers, json int64
	fields        map[string]*fieldCount
	dropped       int64
	headers       map[string]*int64
	size, frames  *hdrhistogram.Histogram // frames made at the first reply
}

type fieldCount struct {
	answers int64
	types   [jsonTypes]int64
}

func newAnswerSketch() *answerSketch {
	return &answerSketch{fields: map[string]*fieldCount{}, headers: map[string]*int64{}, size: newCountHist()}
}

// add folds a into the sketch. It allocates only for a path or header not
// seen before.
func (s *answerSketch) add(a *Answer) {
	s.answers++
	_ = s.size.RecordValue(min(max(a.Size, 1), maxCount))
	if a.Frames > 0 {
		if s.frames == nil {
			s.frames = newCountHist()
		}
		_ = s.frames.RecordValue(min(int64(a.Frames), maxCount))
	}
	if a.JSON {
		s.json++
	}
	for _, f := range a.fields {
		path := a.text[f.start:f.end]
		fc := s.fields[string(path)]
		if fc == nil {
			if len(s.fields) >= maxFields {
				s.dropped++
				continue
			}
			fc = &fieldCount{}
			s.fields[string(path)] = fc
		}
		fc.answers++
		for t := range jsonTypes {
			if f.types&(1<<t) != 0 {
				fc.types[t]++
			}
		}
	}
	for h := a.headers; len(h) > 0; {
		var key []byte
		key, h, _ = bytes.Cut(h, []byte("\n"))
		switch n := s.headers[string(key)]; {
		case n != nil:
			*n++
		case len(s.headers) < maxHeaders:
			s.headers[string(key)] = new(int64(1))
		}
	}
}

// stats returns the sketch as the result file keeps it.
func (s *answerSketch) stats() *AnswerStats {
	st := &AnswerStats{Answers: s.answers, JSON: s.json, FieldsDropped: s.dropped, Size: countsOf(s.size), SizeHist: encode(s.size)}
	for k, n := range s.headers {
		if st.Headers == nil {
			st.Headers = map[string]int64{}
		}
		st.Headers[k] = *n
	}
	for _, path := range slices.Sorted(maps.Keys(s.fields)) {
		fc := s.fields[path]
		fs := FieldStats{Path: path, Answers: fc.answers, Types: map[string]int64{}}
		for t, n := range fc.types {
			if n > 0 {
				fs.Types[typeName(t)] = n
			}
		}
		st.Fields = append(st.Fields, fs)
	}
	if s.frames != nil {
		st.Frames, st.FramesHist = countsOf(s.frames), encode(s.frames)
	}
	return st
}

// mergeAnswers adds b's sketch into a's; a nil a takes a copy of b. The
// error names what of the result file could not be read.
func mergeAnswers(a, b *AnswerStats, what string) (*AnswerStats, error) {
	if b == nil {
		return a, nil
	}
	if a == nil {
		a = &AnswerStats{}
	}
	a.Answers += b.Answers
	a.JSON += b.JSON
	a.FieldsDropped += b.FieldsDropped
	for k, n := range b.Headers {
		if a.Headers == nil {
			a.Headers = map[string]int64{}
		}
		a.Headers[k] += n
	}
	at := map[string]int{}
	for i, f := range a.Fields {
		at[f.Path] = i
	}
	for _, f := range b.Fields {
		i, ok := at[f.Path]
		if !ok {
			i = len(a.Fields)
			at[f.Path] = i
			a.Fields = append(a.Fields, FieldStats{Path: f.Path, Types: map[string]int64{}})
		}
		a.Fields[i].Answers += f.Answers
		for t, n := range f.Types {
			a.Fields[i].Types[t] += n
		}
	}
	slices.SortFunc(a.Fields, func(x, y FieldStats) int { return strings.Compare(x.Path, y.Path) })
	for _, h := range []struct {
		dst  *[]byte
		q    *Counts
		src  []byte
		name string
	}{{&a.SizeHist, &a.Size, b.SizeHist, "size"}, {&a.FramesHist, &a.Frames, b.FramesHist, "frames"}} {
		if len(h.src) == 0 {
			continue
		}
		merged := newCountHist()
		for _, enc := range [][]byte{*h.dst, h.src} {
			if len(enc) == 0 {
				continue
			}
			d, err := hdrhistogram.Decode(enc)
			if err != nil {
				return nil, fmt.Errorf("%s: answers' %s histogram: %w", what, h.name, err)
			}
			merged.Merge(d)
		}
		*h.dst, *h.q = encode(merged), countsOf(merged)
	}
	return a, nil
}
