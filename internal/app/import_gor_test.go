package app

import (
	"slices"
	"testing"
)

// TestGorChunks: the chunks of one name go in the order GoReplay numbered
// them, in the places they were given; other files stay where they were.
func TestGorChunks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want []string
	}{
		{"a shell's order", []string{"r_0.gor", "r_1.gor", "r_10.gor", "r_2.gor"}, []string{"r_0.gor", "r_1.gor", "r_2.gor", "r_10.gor"}},
		{"gzip chunks", []string{"d/r.gor_11.gz", "d/r.gor_9.gz"}, []string{"d/r.gor_9.gz", "d/r.gor_11.gz"}},
		{"two names and others", []string{"b_2.gor", "a_1.gor", "x.gor", "b_1.gor", "a_0.gor"}, []string{"b_1.gor", "a_0.gor", "x.gor", "b_2.gor", "a_1.gor"}},
		{"not chunks", []string{"x_b.gor", "x_a.gor", "y_2.gz", "y_1.gz"}, []string{"x_b.gor", "x_a.gor", "y_2.gz", "y_1.gz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gorChunks(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("gorChunks(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	for path, want := range map[string]bool{"r.gor": true, "R_3.GOR": true, "r.gor.gz": true, "r.gor_3.gz": true, "r_3.gor.gz": true, "r_3.gz": false, "r.har": false, "r.gz": false} {
		if isGor(path) != want {
			t.Errorf("isGor(%q) = %v, want %v", path, !want, want)
		}
	}
}
