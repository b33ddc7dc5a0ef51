package report

import (
	"maps"
	"math"
	"slices"
)

// Telling two builds' answers apart. Latency is compared as a distribution
// (MannWhitney); what was answered (status classes, statuses, shares of
// errors) is a matter of counts in categories, and the question is whether
// the candidate's counts are spread over the categories as the base's are,
// up to chance. That is a test of independence on a 2×k contingency table,
// a row per build: Pearson's chi-square when every expected count is large
// enough for its chi-square approximation (Cochran's rule: at least 5),
// Fisher's exact test on a 2×2 table when it is not. Everything here takes
// counts as large as a run makes (billions) without overflow, and computes
// its p-values to about 1e-10 relative down to 1e-300, so that a report can
// print tiny ones as they are (the tests hold them to SciPy's and, for
// Fisher's test, to sums in exact arithmetic).

// Methods countsDiffer names.
const (
	methodChiSquare = "chi-square"
	methodFisher    = "fisher"
	methodNone      = "none" // nothing to test: fewer than two categories, or a side with no counts
)

// minExpected is Cochran's rule: the chi-square approximation holds when
// every cell's expected count is at least this.
const minExpected = 5

// chiSquare is Pearson's chi-square test of independence for an r×c
// contingency table: rows the builds (base, candidate), columns categories
// such as status classes or statuses. It returns the statistic
// Σ (observed-expected)²/expected, its degrees of freedom and the p-value,
// the chance of a statistic at least as large if rows and columns were
// independent.
//
// Rows and columns that are all zero say nothing and are dropped first,
// so df = (r-1)(c-1) counts only the rows and columns that hold something;
// a table left with fewer than two of either has df 0 and p 1. Rows may
// differ in length (missing cells are zero), and a negative count, which
// is not a count, is taken as zero. The p-value is that of the chi-square
// approximation, which is good when every expected count is at least 5;
// below that use fisherExact (countsDiffer chooses).
func chiSquare(table [][]int64) (stat float64, df int, p float64) {
	width := 0
	for _, row := range table {
		width = max(width, len(row))
	}
	// Sums in float64: a table of large int64 counts would overflow an
	// int64 sum, and the expected counts are fractions anyway.
	rowSum := make([]float64, len(table))
	colSum := make([]float64, width)
	var total float64
	for i, row := range table {
		for j, v := range row {
			x := float64(max(v, 0))
			rowSum[i] += x
			colSum[j] += x
			total += x
		}
	}
	r, c := countPositive(rowSum), countPositive(colSum)
	if r < 2 || c < 2 {
		return 0, 0, 1
	}
	for i, row := range table {
		if rowSum[i] == 0 {
			continue
		}
		for j := range width {
			if colSum[j] == 0 {
				continue
			}
			var o float64
			if j < len(row) {
				o = float64(max(row[j], 0))
			}
			e := rowSum[i] * colSum[j] / total
			stat += (o - e) * (o - e) / e
		}
	}
	df = (r - 1) * (c - 1)
	return stat, df, chiSquareSF(stat, df)
}

// countPositive counts the sums that are above zero.
func countPositive(sums []float64) int {
	n := 0
	for _, s := range sums {
		if s > 0 {
			n++
		}
	}
	return n
}

// chiSquareSF is the chi-square distribution's survival function: the
// chance that a chi-square variable with df degrees of freedom (df > 0) is
// at least x. It is Q(df/2, x/2), the regularized upper incomplete gamma
// function.
func chiSquareSF(x float64, df int) float64 {
	return upperGamma(float64(df)/2, x/2)
}

// Iteration bounds of upperGamma. Both the series and the continued fraction
// need a few times sqrt(a) terms where x is near a, the hardest place, so
// gammaTerms lets them converge for a (df/2) up to 1e8 at least, far beyond
// any table of categories.
const (
	gammaEps   = 0x1p-53 // a term this small beside the sum changes nothing
	gammaTiny  = 1e-300  // keeps Lentz's method from dividing by zero
	gammaTerms = 100_000
)

// upperGamma is the regularized upper incomplete gamma function
// Q(a, x) = Γ(a, x)/Γ(a) for a > 0, computed as Numerical Recipes (§6.2)
// does. Below x = a+1 it sums the series for P = 1-Q, which converges fast
// there; Q is then at least about 0.08 for a ≥ 1/2 (df ≥ 1), so taking P
// from 1 loses no accuracy. From x = a+1 up it evaluates Legendre's
// continued fraction for Q itself by the modified Lentz method, which keeps
// its relative accuracy far into the tail, where 1-P would be all rounding.
// Both are multiplied by x^a e^-x / Γ(a), taken as the exp of its log so
// that neither x^a nor Γ(a) overflows; the log's rounding, about |x|·2⁻⁵³,
// is what limits the relative accuracy: about 1e-13 for x up to the
// thousand or so where Q nears 1e-300, 1e-9 at x = 1e6. x ≤ 0 (or NaN)
// gives 1, +Inf gives 0.
func upperGamma(a, x float64) float64 {
	switch {
	case math.IsNaN(x) || x <= 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	}
	lga, _ := math.Lgamma(a)
	front := math.Exp(-x + a*math.Log(x) - lga)
	if x < a+1 {
		// P(a, x) = x^a e^-x / Γ(a) · Σ_{n≥0} x^n / (a(a+1)…(a+n)).
		term := 1 / a
		sum := term
		for n := 1; n < gammaTerms; n++ {
			term *= x / (a + float64(n))
			sum += term
			if term < sum*gammaEps {
				break
			}
		}
		return min(max(1-front*sum, 0), 1)
	}
	// Q(a, x) = x^a e^-x / Γ(a) · 1/(x+1-a- 1·(1-a)/(x+3-a- 2·(2-a)/(x+5-a- …))).
	b := x + 1 - a
	c := 1 / gammaTiny
	d := 1 / b
	h := d
	for i := 1; i < gammaTerms; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < gammaTiny {
			d = gammaTiny
		}
		c = b + an/c
		if math.Abs(c) < gammaTiny {
			c = gammaTiny
		}
		d = 1 / d
		step := d * c
		h *= step
		if math.Abs(step-1) < 2*gammaEps {
			break
		}
	}
	return min(max(front*h, 0), 1)
}

// Bounds of fisherExact's exact sum. Counts above maxExactCount could
// overflow the margins' int64 sums. A table whose hypergeometric standard
// deviation is above maxFisherSD would take millions of terms; every
// expected count of such a table is above maxFisherSD² (the variance is
// at most the smallest expected count), so the chi-square approximation
// is excellent there and is used instead. maxFisherTerms bounds the work
// whatever the shape.
const (
	maxExactCount  = 1 << 60
	maxFisherSD    = 20_000
	maxFisherTerms = 1 << 22
)

// fisherTie is R's relative tolerance for "as likely as the observed
// table": tables whose probabilities are equal in exact arithmetic (the
// mirror image of a symmetric table) can differ by rounding, and must all
// count.
const fisherTie = 1 + 1e-7

// fisherExact is the two-sided p-value of Fisher's exact test for the 2×2
// table [[a, b], [c, d]]: given the table's margins, the chance of a table
// no more likely than the observed one. It sums the hypergeometric
// probabilities of all tables with the same margins whose probability is
// at most the observed one's (within a relative 1e-7, as R's fisher.test),
// so it is exact at any count, but its work grows with the table's
// spread: see maxFisherSD, beyond which it answers with the chi-square
// approximation. A p-value below about 1e-300 comes out as 0. A negative
// count is taken as zero.
func fisherExact(a, b, c, d int64) float64 {
	a, b, c, d = max(a, 0), max(b, 0), max(c, 0), max(d, 0)
	if max(a, b, c, d) > maxExactCount {
		return fisherApprox(a, b, c, d)
	}
	// The tables with these margins are those with k in [lo, hi] in the
	// top left cell; k has the hypergeometric distribution.
	r1, r2, c1 := a+b, c+d, a+c
	n := r1 + r2
	lo, hi := max(0, c1-r2), min(r1, c1)
	if lo == hi {
		return 1
	}
	fr1, fr2, fc1, fn := float64(r1), float64(r2), float64(c1), float64(n)
	if sd := math.Sqrt(fr1 * fr2 * fc1 * (fn - fc1) / (fn * fn * (fn - 1))); sd > maxFisherSD {
		return fisherApprox(a, b, c, d)
	}
	// The sum runs over s(k) = P(k)/P(a), the probabilities relative to
	// the observed table's, so that the tables that count are those with
	// s(k) ≤ fisherTie, s(a) is exactly 1, and the tail sum is at least 1:
	// no lgamma, whose rounding at a million is about 1e-9 of a log,
	// enters the sum, only ratios of neighbours, each a few roundings.
	// It walks from a both ways, outwards, until what is left is
	// negligible; P(k+1)/P(k) decreases with k (the distribution is
	// log-concave), so once a step's ratio ρ is below 1, what is left
	// beyond s is less than s·ρ/(1-ρ).
	const negligible = 1e-17
	all, tail := 1.0, 1.0
	terms := 0
	add := func(s float64) {
		all += s
		if s <= fisherTie {
			tail += s
		}
		terms++
	}
	s := 1.0
	for k := a; k < hi; k++ {
		rho := float64(r1-k) * float64(c1-k) / (float64(k+1) * float64(r2-c1+k+1))
		if rho < 1 && s*rho/(1-rho) < negligible {
			break
		}
		s *= rho
		add(s)
		if all > math.MaxFloat64/4 || terms > maxFisherTerms {
			break
		}
	}
	s = 1.0
	for k := a; k > lo; k-- {
		rho := float64(k) * float64(r2-c1+k) / (float64(r1-k+1) * float64(c1-k+1))
		if rho < 1 && s*rho/(1-rho) < negligible {
			break
		}
		s *= rho
		add(s)
		if all > math.MaxFloat64/4 || terms > maxFisherTerms {
			break
		}
	}
	switch {
	case all > math.MaxFloat64/4:
		// The likeliest tables are over 1e307 times as likely as the
		// observed one, and p, at most tail/all, below 1e-300.
		return 0
	case terms > maxFisherTerms:
		return fisherApprox(a, b, c, d)
	}
	return min(tail/all, 1)
}

// fisherApprox is what fisherExact answers for tables too large to sum,
// whose every expected count is in the hundreds of millions, or whose
// counts are beyond 2⁶⁰: Pearson's chi-square with 1 degree of freedom.
func fisherApprox(a, b, c, d int64) float64 {
	_, _, p := chiSquare([][]int64{{a, b}, {c, d}})
	return p
}

// proportionsDiffer is the two-sided p-value that the proportions x1/n1 and
// x2/n2 (say, the base's and the candidate's share of errors) differ: the
// test of the 2×2 table [[x1, n1-x1], [x2, n2-x2]], Fisher's exact test when
// any of its expected counts is below 5 (Cochran's rule), Pearson's
// chi-square with 1 degree of freedom and no continuity correction
// otherwise. n1 or n2 at most zero gives 1; x is taken into [0, n].
func proportionsDiffer(x1, n1, x2, n2 int64) float64 {
	if n1 <= 0 || n2 <= 0 {
		return 1
	}
	x1, x2 = min(max(x1, 0), n1), min(max(x2, 0), n2)
	// The smallest expected count is the smaller row's share of the
	// smaller column.
	fn1, fn2, fx := float64(n1), float64(n2), float64(x1)+float64(x2)
	fn := fn1 + fn2
	if min(fn1, fn2)*min(fx, fn-fx)/fn < minExpected {
		return fisherExact(x1, n1-x1, x2, n2-x2)
	}
	_, _, p := chiSquare([][]int64{{x1, n1 - x1}, {x2, n2 - x2}})
	return p
}

// countsDiffer is the p-value that base and cand, counts per category (for
// example per status: "200", "404", "500"), are spread differently over the
// categories, and the method that gave it. Categories missing from a map
// count zero there, and negative counts are taken as zero.
//
// When every expected count is at least 5 it is Pearson's chi-square over
// all categories (methodChiSquare). Otherwise the categories with an
// expected count below 5 are merged into one column, "other", and if that
// makes the rule hold (the merged column is large enough and another is
// left beside it), it is chi-square over the big categories and "other".
// If not (say two categories, one with few counts, or a side with only a
// handful), it is Fisher's exact test (methodFisher) on the 2×2 collapse
// of the category whose share changed most against all the others. That
// category was chosen for having changed most, so with three or more to
// choose from its p-value is multiplied by their number (Bonferroni) lest
// the choice make chance look like a change. A map with no counts, or
// fewer than two categories in all, gives 1 and methodNone.
func countsDiffer(base, cand map[string]int64) (p float64, method string) {
	// The categories, sorted so that ties below are broken the same way
	// each time.
	keys := slices.AppendSeq(slices.Collect(maps.Keys(base)), maps.Keys(cand))
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var cols []category
	var nb, nc int64
	for _, k := range keys {
		col := category{base: max(base[k], 0), cand: max(cand[k], 0)}
		if col.base == 0 && col.cand == 0 {
			continue
		}
		cols = append(cols, col)
		nb, nc = addSat(nb, col.base), addSat(nc, col.cand)
	}
	if len(cols) < 2 || nb == 0 || nc == 0 {
		return 1, methodNone
	}

	fb, fc := float64(nb), float64(nc)
	// A column's smallest expected count is the smaller row's share of it.
	small := func(col category) bool {
		return min(fb, fc)*(float64(col.base)+float64(col.cand))/(fb+fc) < minExpected
	}
	table := [][]int64{nil, nil}
	var other category
	merged := 0
	for _, col := range cols {
		if small(col) {
			other.base, other.cand = addSat(other.base, col.base), addSat(other.cand, col.cand)
			merged++
			continue
		}
		table[0] = append(table[0], col.base)
		table[1] = append(table[1], col.cand)
	}
	switch {
	case merged == 0:
		_, _, p := chiSquare(table)
		return p, methodChiSquare
	case len(table[0]) >= 1 && !small(other):
		table[0] = append(table[0], other.base)
		table[1] = append(table[1], other.cand)
		_, _, p := chiSquare(table)
		return p, methodChiSquare
	}
	most, change := cols[0], -1.0
	for _, col := range cols {
		if d := math.Abs(float64(col.cand)/fc - float64(col.base)/fb); d > change {
			most, change = col, d
		}
	}
	p = fisherExact(most.base, nb-most.base, most.cand, nc-most.cand)
	if len(cols) > 2 {
		p = min(p*float64(len(cols)), 1)
	}
	return p, methodFisher
}

// category is one column of countsDiffer's table: a category's counts in
// the base and the candidate.
type category struct{ base, cand int64 }

// addSat is x+y for counts (x, y ≥ 0), held at math.MaxInt64 rather than
// wrapping.
func addSat(x, y int64) int64 {
	if x > math.MaxInt64-y {
		return math.MaxInt64
	}
	return x + y
}
