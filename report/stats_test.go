package report

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// The reference values below were computed by SciPy 1.10.1 (Debian's
// python3-scipy), not by this package: each case names the call that gave
// it. Floats are as Python's repr printed them.

// closeTo says got is want within a relative tol (both 0 counts as close).
func closeTo(got, want, tol float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tol*math.Abs(want)
}

// TestChiSquareScipy holds chiSquare to
// scipy.stats.chi2_contingency(numpy.array(table), correction=False).
func TestChiSquareScipy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table [][]int64
		stat  float64
		df    int
		p     float64
		tol   float64
	}{
		// chi2_contingency([[3,1],[1,3]], correction=False)
		{"tea tasting", [][]int64{{3, 1}, {1, 3}}, 2.0, 1, 0.15729920705028105, 1e-8},
		// chi2_contingency([[9500,300,200],[9000,500,500]], correction=False)
		{"2x3, a big difference", [][]int64{{9500, 300, 200}, {9000, 500, 500}}, 192.0849420849421, 2, 1.946636211512902e-42, 1e-6},
		// chi2_contingency([[1000,50,10],[1000,50,10]], correction=False)
		{"identical", [][]int64{{1000, 50, 10}, {1000, 50, 10}}, 0, 2, 1, 1e-8},
		// chi2_contingency([[1000,50,10],[1001,49,10]], correction=False)
		{"nearly identical", [][]int64{{1000, 50, 10}, {1001, 49, 10}}, 0.010600760225947633, 2, 0.9947136421163764, 1e-8},
		// chi2_contingency([[0,10],[5,5]], correction=False)
		{"2x2 with a zero", [][]int64{{0, 10}, {5, 5}}, 6.666666666666667, 1, 0.009823274507519235, 1e-8},
		// chi2_contingency([[990000,10000],[985000,15000]], correction=False)
		{"large counts", [][]int64{{990000, 10000}, {985000, 15000}}, 1012.6582278481013, 1, 3.1830290137675714e-222, 1e-6},
		// chi2_contingency([[12,5,7,9],[8,15,6,3],[20,4,11,10]], correction=False)
		{"3x4", [][]int64{{12, 5, 7, 9}, {8, 15, 6, 3}, {20, 4, 11, 10}}, 18.34882680976431, 6, 0.005417099815066229, 1e-8},
		// chi2_contingency([[10,5],[20,7]], correction=False): SciPy refuses
		// the all-zero column, which chiSquare drops.
		{"an all-zero column", [][]int64{{10, 0, 5}, {20, 0, 7}}, 0.2592592592592593, 1, 0.6106295108191169, 1e-8},
		// chi2_contingency([[98000,1200,500,250,40],[97500,1300,520,600,80]], correction=False)
		{"statuses", [][]int64{{98000, 1200, 500, 250, 40}, {97500, 1300, 520, 600, 80}}, 163.12141001626162, 4, 3.1290266905447403e-34, 1e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stat, df, p := chiSquare(tc.table)
			if df != tc.df || !closeTo(stat, tc.stat, 1e-10) || math.Abs(stat-tc.stat) > 1e-9 && tc.stat == 0 || !closeTo(p, tc.p, tc.tol) {
				t.Errorf("chiSquare = %v, %d, %v; want %v, %d, %v", stat, df, p, tc.stat, tc.df, tc.p)
			}
		})
	}
}

// TestChiSquareDegenerate: what has nothing to test gives df 0 and p 1.
func TestChiSquareDegenerate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table [][]int64
	}{
		{"nil", nil},
		{"all zero", [][]int64{{0, 0}, {0, 0}}},
		{"one row", [][]int64{{5, 7, 9}}},
		{"one row left", [][]int64{{5, 7, 9}, {0, 0, 0}}},
		{"one column left", [][]int64{{5, 0}, {7, 0}}},
		{"negatives are zero", [][]int64{{5, -3}, {7, -1}}},
		{"ragged, one column", [][]int64{{5}, {7, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if stat, df, p := chiSquare(tc.table); stat != 0 || df != 0 || p != 1 {
				t.Errorf("chiSquare = %v, %d, %v; want 0, 0, 1", stat, df, p)
			}
		})
	}
}

// TestChiSquareSFScipy holds chiSquareSF to scipy.stats.chi2.sf(x, df),
// at the 5% critical values, in the bulk and far into the tail.
func TestChiSquareSFScipy(t *testing.T) {
	for _, tc := range []struct {
		x   float64
		df  int
		p   float64 // chi2.sf(x, df)
		tol float64
	}{
		{3.841458820694124, 1, 0.04999999999999989, 1e-8},
		{0.5, 1, 0.47950012218695337, 1e-8},
		{1e-10, 1, 0.9999920211543921, 1e-8},
		{60, 1, 9.485737571073857e-15, 1e-8},
		{1000, 1, 1.7958327848007363e-219, 1e-6},
		{10, 2, 0.006737946999085468, 1e-8},
		{1300, 2, 5.111951948651156e-283, 1e-6},
		{1e-3, 3, 0.9999915920809419, 1e-8},
		{7.814727903251178, 3, 0.05, 1e-8},
		{200, 3, 4.218541107192018e-43, 1e-6},
		{9.487729036781154, 4, 0.05000000000000006, 1e-8},
		{30, 5, 1.4748581038443073e-05, 1e-8},
		{1, 6, 0.9856123220330293, 1e-8},
		{50, 7, 1.4444852779215397e-08, 1e-8},
		{15.5, 8, 0.0501220545326652, 1e-8},
		{2, 9, 0.9914676066288135, 1e-8},
		{18.307038053275146, 10, 0.05000000000000005, 1e-8},
		{0.01, 10, 0.999999999999974, 1e-8},
		{300, 10, 1.5546747543803087e-58, 1e-6},
		{49, 50, 0.5134950836412907, 1e-8},
		{120, 100, 0.08440668109369177, 1e-8},
		{900, 1000, 0.9892827619087102, 1e-8},
		{1000, 1000, 0.49405285382923964, 1e-8},
		{1100, 1000, 0.014614408126295192, 1e-8},
	} {
		if p := chiSquareSF(tc.x, tc.df); !closeTo(p, tc.p, tc.tol) {
			t.Errorf("chiSquareSF(%v, %d) = %v, want %v (relative error %.2g)", tc.x, tc.df, p, tc.p, math.Abs(p-tc.p)/tc.p)
		}
	}
}

// TestChiSquareSFClosedForms: for 1 and 2 degrees of freedom the survival
// function has closed forms, erfc(sqrt(x/2)) and exp(-x/2), which the
// standard library computes independently; across the range, out to where
// p nears 1e-300, the two agree to 1e-10 relative.
func TestChiSquareSFClosedForms(t *testing.T) {
	for x := 1e-6; x < 1380; x *= 1.1 {
		if got, want := chiSquareSF(x, 1), math.Erfc(math.Sqrt(x/2)); !closeTo(got, want, 1e-10) {
			t.Errorf("chiSquareSF(%v, 1) = %v, want %v", x, got, want)
		}
		if got, want := chiSquareSF(x, 2), math.Exp(-x/2); !closeTo(got, want, 1e-10) {
			t.Errorf("chiSquareSF(%v, 2) = %v, want %v", x, got, want)
		}
	}
	for _, x := range []float64{0, -1, math.NaN()} {
		if p := chiSquareSF(x, 3); p != 1 {
			t.Errorf("chiSquareSF(%v, 3) = %v, want 1", x, p)
		}
	}
	if p := chiSquareSF(math.Inf(1), 3); p != 0 {
		t.Errorf("chiSquareSF(+Inf, 3) = %v, want 0", p)
	}
}

// TestFisherExactScipy holds fisherExact to
// scipy.stats.fisher_exact([[a, b], [c, d]], alternative='two-sided').
// SciPy counts a table as likely as the observed one within a relative
// 1e-14, R and fisherExact within 1e-7; none of these cases has a table
// whose probability falls between the two (checked with hypergeom.logpmf
// over the support), so the rules agree on them.
func TestFisherExactScipy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a, b, c, d int64
		p          float64
		tol        float64
	}{
		// fisher_exact([[3,1],[1,3]]); exactly 34/70
		{"tea tasting", 3, 1, 1, 3, 0.48571428571428565, 1e-8},
		// fisher_exact([[8,2],[1,5]])
		{"whales and sharks", 8, 2, 1, 5, 0.034965034965034975, 1e-8},
		// fisher_exact([[1,9],[11,3]])
		{"dieting", 1, 9, 11, 3, 0.0027594561852200836, 1e-8},
		// fisher_exact([[0,10],[5,5]])
		{"a zero cell", 0, 10, 5, 5, 0.032507739938080496, 1e-8},
		// fisher_exact([[5,0],[0,5]])
		{"two zero cells", 5, 0, 0, 5, 0.007936507936507938, 1e-8},
		// fisher_exact([[0,0],[5,5]])
		{"a zero row", 0, 0, 5, 5, 1, 1e-8},
		// fisher_exact([[0,5],[0,7]])
		{"a zero column", 0, 5, 0, 7, 1, 1e-8},
		// fisher_exact([[2,7],[8,2]])
		{"small", 2, 7, 8, 2, 0.02301413756522116, 1e-8},
		// fisher_exact([[7,12],[0,15]])
		{"lopsided", 7, 12, 0, 15, 0.010562649824820209, 1e-8},
		// fisher_exact([[500,500],[520,480]])
		{"no real difference", 500, 500, 520, 480, 0.3953996780940261, 1e-8},
		// fisher_exact([[10,1000000],[25,1000000]]); exactly 0.01667291293128377
		// (Python fractions over the 36 tables)
		{"rare errors in a million", 10, 1000000, 25, 1000000, 0.016672912934211533, 1e-8},
		// fisher_exact([[1,0],[0,1000000]]); exactly 1/1000001
		{"one in a million", 1, 0, 0, 1000000, 9.999990001074653e-07, 1e-8},
		// fisher_exact([[100000,100000],[100500,99500]]); summed in integers,
		// 0.11456975116828591 (SciPy's hypergeom is 6e-11 off)
		{"large, near the middle", 100000, 100000, 100500, 99500, 0.11456975116110986, 1e-8},
		// fisher_exact([[990000,10000],[985000,15000]]); summed in integers,
		// 1.3205199557312831e-223 (SciPy's hypergeom is 2e-10 off)
		{"large, far tail", 990000, 10000, 985000, 15000, 1.3205199559841098e-223, 1e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p := fisherExact(tc.a, tc.b, tc.c, tc.d); !closeTo(p, tc.p, tc.tol) {
				t.Errorf("fisherExact = %v, want %v (relative error %.2g)", p, tc.p, math.Abs(p-tc.p)/tc.p)
			}
		})
	}
}

// fisherRat is Fisher's exact two-sided p-value in exact arithmetic, as its
// definition states it (R's 1e-7 tolerance included): the sum over all
// tables with [[a, b], [c, d]]'s margins of the hypergeometric
// probabilities at most 1+1e-7 times the observed table's.
func fisherRat(a, b, c, d int64) *big.Rat {
	r1, r2, c1 := a+b, c+d, a+c
	lo, hi := max(0, c1-r2), min(r1, c1)
	weight := func(k int64) *big.Int { // C(r1, k)·C(r2, c1-k)
		var x, y big.Int
		return x.Mul(x.Binomial(r1, k), y.Binomial(r2, c1-k))
	}
	limit := new(big.Rat).SetInt(weight(a))
	limit.Mul(limit, big.NewRat(10_000_001, 10_000_000))
	sum := new(big.Int)
	for k := lo; k <= hi; k++ {
		if w := weight(k); new(big.Rat).SetInt(w).Cmp(limit) <= 0 {
			sum.Add(sum, w)
		}
	}
	return new(big.Rat).SetFrac(sum, new(big.Int).Binomial(r1+r2, c1))
}

// TestFisherExactProperties: for random small tables fisherExact is the
// exact p-value (fisherRat) to 1e-12, lies in [0, 1], and does not change
// when the rows, the columns or both are swapped, or the table is
// transposed.
func TestFisherExactProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + rng.Int64N(40)
		a, b, c, d := rng.Int64N(n), rng.Int64N(n), rng.Int64N(n), rng.Int64N(n)
		p := fisherExact(a, b, c, d)
		if p < 0 || p > 1 {
			t.Fatalf("fisherExact(%d, %d, %d, %d) = %v, out of [0, 1]", a, b, c, d, p)
		}
		if min(a+b, c+d, a+c, b+d) > 0 {
			want, _ := fisherRat(a, b, c, d).Float64()
			if !closeTo(p, want, 1e-12) {
				t.Errorf("fisherExact(%d, %d, %d, %d) = %v, exactly %v", a, b, c, d, p, want)
			}
		}
		for _, q := range [][4]int64{{c, d, a, b}, {b, a, d, c}, {d, c, b, a}, {a, c, b, d}} {
			if pq := fisherExact(q[0], q[1], q[2], q[3]); !closeTo(pq, p, 1e-12) {
				t.Errorf("fisherExact(%d, %d, %d, %d) = %v, but %v for %v", a, b, c, d, p, pq, q)
			}
		}
	}
}

// TestChiSquareProperties: for random small tables p is in [0, 1], the
// statistic is not negative, and neither changes when the rows are
// swapped.
func TestChiSquareProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		rows, cols := 2+rng.IntN(3), 2+rng.IntN(5)
		table := make([][]int64, rows)
		for i := range table {
			table[i] = make([]int64, cols)
			for j := range table[i] {
				table[i][j] = rng.Int64N(30)
			}
		}
		stat, df, p := chiSquare(table)
		if p < 0 || p > 1 || stat < 0 || df < 0 || df > (rows-1)*(cols-1) {
			t.Fatalf("chiSquare(%v) = %v, %d, %v", table, stat, df, p)
		}
		table[0], table[1] = table[1], table[0]
		if s2, df2, p2 := chiSquare(table); !closeTo(s2, stat, 1e-12) || df2 != df || !closeTo(p2, p, 1e-10) {
			t.Errorf("chiSquare(%v) = %v, %d, %v; rows swapped %v, %d, %v", table, stat, df, p, s2, df2, p2)
		}
	}
}

// TestFisherExactLarge: tables too spread to sum fall back to chi-square,
// counts near the int64 limit do not overflow, and a table less likely
// than float64 can hold gives 0, all in [0, 1] and quickly.
func TestFisherExactLarge(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a, b, c, d int64
		want       float64 // -1: anything in [0, 1]
	}{
		{"billions, alike", 2_000_000_000, 2_000_000_000, 2_000_000_000, 2_000_000_000, 1},
		{"billions, apart", 2_000_000_000, 2_000_000_000, 2_000_100_000, 1_999_900_000, -1},
		{"near MaxInt64", math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, 1},
		{"near MaxInt64, one cell", math.MaxInt64, 1, 1, 0, -1},
		{"a single table", math.MaxInt64 / 4, 0, 0, 0, 1},
		{"millions apart", 3_000_000, 0, 0, 3_000_000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fisherExact(tc.a, tc.b, tc.c, tc.d)
			if p < 0 || p > 1 || tc.want >= 0 && !closeTo(p, tc.want, 1e-8) {
				t.Errorf("fisherExact = %v, want %v", p, tc.want)
			}
		})
	}
}

// TestProportionsDiffer: Fisher's test below Cochran's rule, chi-square
// above it, and 1 when a side has nothing.
func TestProportionsDiffer(t *testing.T) {
	for _, tc := range []struct {
		name           string
		x1, n1, x2, n2 int64
		p              float64
		tol            float64
	}{
		// fisher_exact([[1,99],[8,92]]): 9 errors in 200, expected 4.5
		{"few errors", 1, 100, 8, 100, 0.03489915197211575, 1e-8},
		// fisher_exact([[1,999999],[8,999992]]): expected 4.5
		{"few errors in millions", 1, 1000000, 8, 1000000, 0.039062078143056816, 1e-8},
		// chi2_contingency([[1,999999],[9,999991]], correction=False):
		// expected exactly 5, which the rule lets through
		{"five expected errors", 1, 1000000, 9, 1000000, 0.011411830689990814, 1e-8},
		// chi2_contingency([[50,950],[80,920]], correction=False)
		{"enough errors", 50, 1000, 80, 1000, 0.00650659748363784, 1e-8},
		// chi2_contingency([[10000,990000],[15000,985000]], correction=False)
		{"millions", 10000, 1000000, 15000, 1000000, 3.1830290137675714e-222, 1e-6},
		{"no base", 0, 0, 5, 10, 1, 0},
		{"no errors", 0, 10, 0, 10, 1, 0},
		{"all errors", 10, 10, 20, 20, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p := proportionsDiffer(tc.x1, tc.n1, tc.x2, tc.n2); !closeTo(p, tc.p, tc.tol) {
				t.Errorf("proportionsDiffer = %v, want %v", p, tc.p)
			}
		})
	}
}

// TestCountsDiffer: chi-square when the counts allow it, over the merged
// small categories when merging lets it, Fisher's test otherwise.
func TestCountsDiffer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		base, cand map[string]int64
		p          float64
		method     string
		tol        float64
	}{
		// chi2_contingency([[98000,1200,500,250,40],[97500,1300,520,600,80]], correction=False)
		{"every count large",
			map[string]int64{"200": 98000, "201": 1200, "304": 500, "404": 250, "500": 40},
			map[string]int64{"200": 97500, "201": 1300, "304": 520, "404": 600, "500": 80},
			3.1290266905447403e-34, methodChiSquare, 1e-6},
		// chi2_contingency([[5000,300,6],[5000,330,7]], correction=False):
		// 302, 500 and 503 merged into one column of 6 and 7
		{"small statuses merged",
			map[string]int64{"200": 5000, "404": 300, "500": 2, "503": 1, "302": 3},
			map[string]int64{"200": 5000, "404": 330, "500": 4, "503": 3},
			0.4928224996746987, methodChiSquare, 1e-8},
		// fisher_exact([[40,1],[35,6]])
		{"two statuses, one rare",
			map[string]int64{"200": 40, "500": 1},
			map[string]int64{"200": 35, "500": 6},
			0.10880961513872905, methodFisher, 1e-8},
		// 3 * fisher_exact([[20,1],[14,7]]): 200 changed most, of three
		{"three statuses, two rare",
			map[string]int64{"200": 20, "404": 1, "500": 0},
			map[string]int64{"200": 14, "404": 2, "500": 5},
			3 * 0.04482531311799604, methodFisher, 1e-8},
		// fisher_exact([[2,3],[10,1000]]): the base has five answers
		{"a side with a handful",
			map[string]int64{"200": 3, "500": 2},
			map[string]int64{"200": 1000, "500": 10},
			0.0012573840674524606, methodFisher, 1e-8},
		{"identical", map[string]int64{"200": 900, "404": 100}, map[string]int64{"200": 900, "404": 100}, 1, methodChiSquare, 1e-12},
		{"empty", map[string]int64{}, nil, 1, methodNone, 0},
		{"an empty side", map[string]int64{"200": 5, "500": 5}, map[string]int64{"200": 0}, 1, methodNone, 0},
		{"one status", map[string]int64{"200": 5}, map[string]int64{"200": 900}, 1, methodNone, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, method := countsDiffer(tc.base, tc.cand)
			if method != tc.method || !closeTo(p, tc.p, tc.tol) {
				t.Errorf("countsDiffer = %v, %s; want %v, %s", p, method, tc.p, tc.method)
			}
		})
	}
}

// TestCountsDifferInRange: for random status maps p is in [0, 1] and
// swapping base and candidate changes nothing.
func TestCountsDifferInRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	statuses := []string{"200", "201", "304", "404", "500", "503"}
	for range 2000 {
		base, cand := map[string]int64{}, map[string]int64{}
		for _, s := range statuses {
			if rng.IntN(2) == 0 {
				base[s] = rng.Int64N(1 + rng.Int64N(200))
			}
			if rng.IntN(2) == 0 {
				cand[s] = rng.Int64N(1 + rng.Int64N(200))
			}
		}
		p, method := countsDiffer(base, cand)
		if p < 0 || p > 1 {
			t.Fatalf("countsDiffer(%v, %v) = %v, %s", base, cand, p, method)
		}
		if q, m := countsDiffer(cand, base); m != method || !closeTo(q, p, 1e-10) {
			t.Errorf("countsDiffer(%v, %v) = %v, %s; swapped %v, %s", base, cand, p, method, q, m)
		}
	}
}
