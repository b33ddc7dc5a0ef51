// Package golden compares a test's text output with the file that holds
// what it should be, testdata/<test name>.golden, as Go projects do; the
// -update flag of a test binary that imports it rewrites the files
// instead. Only tests import it.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update is the -update flag of every test binary that imports the
// package.
var update = flag.Bool("update", false, "rewrite the golden files") //nolint:gochecknoglobals // a test flag

// Check compares got with testdata/<t.Name()>.golden, or with -update
// writes it there. pkg names the package for the message that says how to
// rewrite it (./report).
func Check(t testing.TB, pkg string, got []byte) {
	t.Helper()
	CheckFile(t, pkg, filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden"), got)
}

// CheckFile is Check with the file named.
func CheckFile(t testing.TB, pkg, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil { //nolint:gosec // a source file
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v\nrun `go test %s -run '^%s$' -update` to write it", err, pkg, t.Name())
	}
	if msg := Difference(want, got); msg != "" {
		t.Errorf("%s differs from the output %s\nif the change is intended, run `go test %s -run '^%s$' -update`", path, msg, pkg, t.Name())
	}
}

// Difference describes the first line where got differs from want, or
// returns "" when they are equal.
func Difference(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	// Lines keep their newline, so that a missing last one shows.
	lines := func(b []byte) []string {
		ls := strings.SplitAfter(string(b), "\n")
		if ls[len(ls)-1] == "" {
			ls = ls[:len(ls)-1]
		}
		return ls
	}
	wl, gl := lines(want), lines(got)
	line := func(ls []string, i int) string {
		if i >= len(ls) {
			return "(end of output)"
		}
		return fmt.Sprintf("%q", ls[i])
	}
	i := 0
	for i < len(wl) && i < len(gl) && wl[i] == gl[i] {
		i++
	}
	return fmt.Sprintf("at line %d:\n  want: %s\n  got:  %s\n(want %d bytes in %d lines, got %d bytes in %d lines)",
		i+1, line(wl, i), line(gl, i), len(want), len(wl), len(got), len(gl))
}
