package traces_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// Reading a trace: Open it, then range over its sessions; a damaged file
// yields the sessions before the damage, then one error saying where.
func ExampleFile_Sessions() {
	path := filepath.Join(os.TempDir(), "thrive-example.thrv")
	defer func() { _ = os.Remove(path) }()
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	w, err := traces.NewWriter(f, traces.Meta{Source: "example"})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	for i, u := range []string{"/api/projects/17/", "/api/projects/18/"} {
		s := &traces.Session{ID: fmt.Sprint("s", i), Profile: "browse", Start: start,
			Exchanges: []traces.Exchange{{Method: "GET", URL: u, Status: 200, Duration: 12 * time.Millisecond}}}
		if err := w.Write(s); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	f.Close()

	t, err := traces.Open(path)
	if err != nil {
		panic(err)
	}
	defer t.Close()
	fmt.Println("recorded by", t.Meta().Source)
	for s, err := range t.Sessions() {
		if err != nil {
			panic(err)
		}
		ex := s.Exchanges[0]
		fmt.Println(s.ID, s.Profile, traces.Template(ex.Method, ex.URL), ex.Status)
	}
	// Output:
	// recorded by example
	// s0 browse GET /api/projects/{id}/ 200
	// s1 browse GET /api/projects/{id}/ 200
}
