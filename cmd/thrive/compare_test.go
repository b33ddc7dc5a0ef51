package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/report"
)

// resultFile writes a result of 3,000 requests with log-normal latencies
// around 20 ms, multiplied by slow, and returns its path.
func resultFile(t *testing.T, seed uint64, slow float64) string {
	t.Helper()
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	r := report.NewRecorder(start)
	rng := rand.New(rand.NewPCG(seed, 1))
	for range 3000 {
		d := time.Duration(float64(20*time.Millisecond) * slow * math.Exp(rng.NormFloat64()*0.4))
		r.Observe(&report.Sample{Kind: report.HTTP, Profile: "browse", Endpoint: "GET /api/projects/{id}/", Status: 200, Intended: start, Sent: start, Done: d})
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.Result("http://t", "", start.Add(time.Minute), report.RunParams{Users: 10}).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompareCommand(t *testing.T) {
	base, same, slower := resultFile(t, 1, 1), resultFile(t, 2, 1), resultFile(t, 3, 1.3)
	code, out, errOut := thrive(t, "compare", base, same)
	if code != exitOK || !strings.Contains(out, "verdict: NO CHANGE") {
		t.Fatalf("same build: exit %d: %s\n%s", code, errOut, out)
	}
	code, out, errOut = thrive(t, "compare", base, slower, "--format", "markdown")
	if code != exitCriteria || !strings.Contains(out, "| GET /api/projects/{id}/ | browse |") || !strings.Contains(errOut, "regressed") {
		t.Fatalf("slower build: exit %d: %s\n%s", code, errOut, out)
	}
	// Allowing 40%, the 30% slow-down passes; JSON says why.
	code, out, errOut = thrive(t, "compare", base, slower, "--max-regression", "40%", "--format", "json")
	var c report.Comparison
	if code != exitOK || json.Unmarshal([]byte(out), &c) != nil || c.Verdict != report.NoChange || c.Overall.P95Change < 0.2 {
		t.Fatalf("40%% allowed: exit %d: %s\n%s", code, errOut, out)
	}
	if code, _, errOut := thrive(t, "compare", base, same, "--format", "xml"); code != exitUsage || !strings.Contains(errOut, "--format") {
		t.Fatalf("bad format: exit %d: %s", code, errOut)
	}
}
