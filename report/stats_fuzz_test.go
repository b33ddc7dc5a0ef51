package report

import (
	"encoding/binary"
	"math"
	"testing"
)

// sameP says two p-values that should be equal are, up to rounding: within
// 1e-9 relative, or both below what float64 resolves near 1e-300.
func sameP(p, q float64) bool {
	return math.Abs(p-q) <= 1e-9*max(p, q)+1e-290
}

// FuzzFisherExact gives fisherExact any four counts, negative and near the
// int64 limit included: it never panics, p is in [0, 1], and swapping the
// rows, the columns or both, or transposing the table, changes nothing.
// proportionsDiffer, over the same counts, stays in [0, 1] too.
//
//	go test -run XXX -fuzz FuzzFisherExact ./report/
func FuzzFisherExact(f *testing.F) {
	for _, seed := range [][4]int64{
		{3, 1, 1, 3}, {0, 0, 0, 0}, {0, 10, 5, 5}, {1, 0, 0, 1_000_000},
		{990_000, 10_000, 985_000, 15_000}, {3_000_000, 0, 0, 3_000_000},
		{2_000_000_000, 2_000_000_000, 2_000_100_000, 1_999_900_000},
		{math.MaxInt64, 1, 1, 0}, {-5, 3, 2, -1},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, a, b, c, d int64) {
		p := fisherExact(a, b, c, d)
		if !(p >= 0 && p <= 1) {
			t.Fatalf("fisherExact(%d, %d, %d, %d) = %v, out of [0, 1]", a, b, c, d, p)
		}
		for _, q := range [][4]int64{{c, d, a, b}, {b, a, d, c}, {d, c, b, a}, {a, c, b, d}} {
			if pq := fisherExact(q[0], q[1], q[2], q[3]); !sameP(p, pq) {
				t.Fatalf("fisherExact(%d, %d, %d, %d) = %v, but %v for %v", a, b, c, d, p, pq, q)
			}
		}
		if p := proportionsDiffer(a, a+b, c, c+d); !(p >= 0 && p <= 1) {
			t.Fatalf("proportionsDiffer(%d, %d, %d, %d) = %v, out of [0, 1]", a, a+b, c, c+d, p)
		}
	})
}

// FuzzChiSquare gives chiSquare any table: width from the first argument,
// cells as varints from the bytes (negative and huge ones included), the
// last row cut short. It never panics, p is in [0, 1], df is (r-1)(c-1) of
// a table no larger than the given one, and swapping the first two rows
// changes nothing but rounding (the statistic's is absolute when it is
// below 1: with counts near 1e16 each cell's expected count is off by an
// ulp, 2, and a statistic near 0 by as much as that makes).
//
//	go test -run XXX -fuzz FuzzChiSquare ./report/
func FuzzChiSquare(f *testing.F) {
	seed := func(width uint8, cells ...int64) {
		var data []byte
		for _, v := range cells {
			data = binary.AppendVarint(data, v)
		}
		f.Add(width, data)
	}
	seed(2, 3, 1, 1, 3)
	seed(3, 9500, 300, 200, 9000, 500, 500)
	seed(3, 10, 0, 5, 20, 0, 7)
	seed(2, 990_000, 10_000, 985_000, 15_000)
	seed(4, 12, 5, 7, 9, 8, 15, 6, 3, 20, 4, 11, 10)
	seed(2, math.MaxInt64, math.MaxInt64, 1, math.MaxInt64, -7)
	seed(1, 5, 7)
	f.Fuzz(func(t *testing.T, width uint8, data []byte) {
		w := 1 + int(width%8)
		var table [][]int64
		for len(data) > 0 && len(table) < 64 {
			v, n := binary.Varint(data)
			if n <= 0 {
				break
			}
			data = data[n:]
			if len(table) == 0 || len(table[len(table)-1]) == w {
				table = append(table, nil)
			}
			table[len(table)-1] = append(table[len(table)-1], v)
		}
		stat, df, p := chiSquare(table)
		if !(p >= 0 && p <= 1) || !(stat >= 0) || df < 0 || df > max(len(table)-1, 0)*(w-1) || df == 0 && p != 1 {
			t.Fatalf("chiSquare(%v) = %v, %d, %v", table, stat, df, p)
		}
		if len(table) < 2 {
			return
		}
		table[0], table[1] = table[1], table[0]
		// Near a statistic of 0 the chi-square survival function is steep
		// (1 - sqrt(2x/π) for 1 df), so there rounding in the statistic
		// moves p by more than 1e-9, at p > 0.999.
		s2, df2, p2 := chiSquare(table)
		if df2 != df || stat > 1e-6 && !sameP(p2, p) || math.Abs(s2-stat) > 1e-9*max(stat, 1) {
			t.Fatalf("chiSquare(%v) = %v, %d, %v; with the first two rows swapped %v, %d, %v", table, stat, df, p, s2, df2, p2)
		}
	})
}
