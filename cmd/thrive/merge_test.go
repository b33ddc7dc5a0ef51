package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/report"
)

// TestMergeShardProcesses runs a replay as 4 shard processes sharing a
// start time against the demo backend, merges their result files, and
// checks that the merged count is what the backend served, that it adds
// up the shards', and that a shard given twice is refused.
func TestMergeShardProcesses(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "m.thrv")
	if code, _, errOut := thrive(t, "demo", "--sessions", "20", "--time-scale", "1000", "--out", trace, "--users", "5", "--run-time", "1s"); code != exitOK {
		t.Fatalf("demo: %s", errOut)
	}
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")
	before := served(t, backend)
	// Four processes start, each loading the trace: under a loaded CI
	// machine that took over 4 s, and a shard refuses a run that would
	// have ended before it began.
	start := time.Now().Add(8 * time.Second).UTC().Format(time.RFC3339Nano)
	dir := t.TempDir()
	type proc struct {
		cmd *exec.Cmd
		out *bufio.Reader
	}
	var shards []string
	var procs []proc
	for i := range 4 {
		out := filepath.Join(dir, fmt.Sprintf("shard-%d.json", i))
		shards = append(shards, out)
		cmd, stdout := thriveProcess(t, "replay", trace, "--target", backend, "--users", "40", "--run-time", "2s", "--scale-time",
			"--profiles", "browse", "--shard", fmt.Sprintf("%d/4", i), "--start-at", start, "--seed", "9", "--quiet", "--out", out)
		procs = append(procs, proc{cmd, stdout})
	}
	var sum int64
	for i, p := range procs {
		_, _ = io.Copy(io.Discard, p.out)
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		sum += readResult(t, shards[i]).Requests
	}
	all := filepath.Join(dir, "all.json")
	code, stdout, errOut := thrive(t, append(append([]string{"merge"}, shards...), "--out", all, "--threshold", "error_rate<1%")...)
	if code != exitOK || !strings.Contains(stdout, "merged 4 results") {
		t.Fatalf("merge: exit %d: %s\n%s", code, errOut, stdout)
	}
	m := readResult(t, all)
	if got := served(t, backend) - before; m.Requests != got || m.Requests != sum || m.Failures != 0 || m.Params.Shard != "4 of 4 merged" {
		t.Fatalf("merged %d requests (%d failures, shard %q); the shards made %d and the backend served %d", m.Requests, m.Failures, m.Params.Shard, sum, got)
	}
	code, _, errOut = thrive(t, "merge", shards[0], shards[0], "--out", filepath.Join(dir, "bad.json"))
	if code != exitUsage || !strings.Contains(errOut, "both shard 0/4") {
		t.Fatalf("a shard twice: exit %d: %s", code, errOut)
	}
}

// TestMergeRefusesOtherSets merges result files that are not every shard
// of one run: one shard of two, shards of different --users, shards run
// at different times, a shard twice. Each is bad usage (exit 2) with a
// message that names what differs and in which files, and writes
// nothing; --partial merges them all the same and says so in the summary,
// the result file and the HTML report.
func TestMergeRefusesOtherSets(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	write := func(name, shard string, users int, from time.Time) string {
		t.Helper()
		r := &report.Result{Version: report.FormatVersion, Target: "http://t", Start: from, End: from.Add(time.Minute), Requests: 10,
			Params: report.RunParams{Trace: "t.thrv", Library: "10 sessions, 40 exchanges", Seed: 1, Pacing: "recorded", Scale: 1,
				RunTime: "1m0s", Users: users, Mix: "browse 100%", Shard: shard}}
		path := filepath.Join(dir, name)
		if err := r.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	a := write("a.json", "0/2", 100, start)
	b := write("b.json", "1/2", 100, start)
	users := write("users.json", "1/2", 200, start)
	late := write("late.json", "1/2", 100, start.Add(5*time.Minute))
	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{"one shard of two", []string{a}, "shard 1/2 is missing: the files given are shard 0/2 (" + a + ")"},
		{"different users", []string{a, users}, "the shards ran with different user counts: 100 in " + a + ", 200 in " + users},
		{"different times", []string{a, late},
			"the shards ran at different times: " + a + " 10:00:00–10:01:00 and " + late + " 10:05:00–10:06:00 (UTC) do not overlap"},
		{"a shard twice", []string{a, a, b}, a + " and " + a + " are both shard 0/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "all.json")
			code, stdout, errOut := thrive(t, append(append([]string{"merge"}, tc.files...), "--out", out)...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "--partial merges them") {
				t.Fatalf("exit %d, %q\nwant exit %d and %q", code, errOut, exitUsage, tc.want)
			}
			if _, err := os.Stat(out); err == nil || stdout != "" {
				t.Fatalf("a refused merge wrote %s or said %q", out, stdout)
			}
			html := filepath.Join(t.TempDir(), "all.html")
			code, stdout, errOut = thrive(t, append(append([]string{"merge"}, tc.files...), "--out", out, "--partial", "--html", html)...)
			if code != exitOK || !strings.Contains(stdout, "partial merge: ") || !strings.Contains(stdout, tc.want) {
				t.Fatalf("--partial: exit %d: %s\n%s", code, errOut, stdout)
			}
			m := readResult(t, out)
			if !strings.Contains(m.Params.Partial, tc.want) || m.Requests != 10*int64(len(tc.files)) {
				t.Errorf("--partial: params.partial %q, %d requests; want %q and %d", m.Params.Partial, m.Requests, tc.want, 10*len(tc.files))
			}
			page, err := os.ReadFile(html)
			if err != nil {
				t.Fatal(err)
			}
			if data, _ := json.Marshal(m.Params.Partial); !strings.Contains(string(page), `"partial":`+string(data)) {
				t.Errorf("the HTML report's data lacks params.partial %s", data)
			}
		})
	}
}

// served sums the demo backend's http_requests_total.
func served(t *testing.T, base string) int64 {
	t.Helper()
	return counter(t, base, "http_requests_total", "")
}
