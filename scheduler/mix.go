package scheduler

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Mix gives each profile its weight among users. Weights need not add up to
// anything; a profile's share is its weight over the total.
type Mix map[string]float64

// ParseMix reads "chat=30,browse=60,import=10".
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("mix %q: want PROFILE=WEIGHT pairs, such as chat=30,browse=60,import=10", s)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
		if err != nil {
			return nil, fmt.Errorf("mix %q: weight of %s %q: want a number", s, name, strings.TrimSpace(w))
		}
		name = strings.TrimSpace(name)
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("mix %q: %s given twice", s, name)
		}
		m[name] = v
	}
	return m, m.Validate()
}

// Validate reports every problem with the weights.
func (m Mix) Validate() error {
	var errs []error
	total := 0.0
	for _, name := range m.Names() {
		w := m[name]
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			errs = append(errs, fmt.Errorf("profile %s: weight %g is not a finite number of 0 or more", name, w))
		}
		total += w
	}
	if len(errs) == 0 && total <= 0 {
		errs = append(errs, errors.New("no profile has a weight above 0"))
	}
	return errors.Join(errs...)
}

// Names returns the profiles in sorted order.
func (m Mix) Names() []string { return slices.Sorted(maps.Keys(m)) }

// Share returns each profile's share of users, in [0, 1].
func (m Mix) Share(name string) float64 {
	total := 0.0
	for _, w := range m {
		total += w
	}
	if total == 0 {
		return 0
	}
	return m[name] / total
}

func (m Mix) String() string {
	parts := make([]string, 0, len(m))
	for _, n := range m.Names() {
		parts = append(parts, n+"="+strconv.FormatFloat(m[n], 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

// assign gives users 0..n-1 their profiles so that every prefix of users
// keeps the mix as closely as whole users can: user k gets the profile
// furthest below its share of k+1 users (ties to the earlier name). The
// result indexes names.
func assign(names []string, shares []float64, n int) []uint16 {
	out := make([]uint16, n)
	counts := make([]float64, len(names))
	for k := range n {
		best, bestGap := 0, math.Inf(-1)
		for i, s := range shares {
			if s == 0 {
				continue
			}
			if gap := s*float64(k+1) - counts[i]; gap > bestGap+1e-12 {
				best, bestGap = i, gap
			}
		}
		out[k] = uint16(best)
		counts[best]++
	}
	return out
}
