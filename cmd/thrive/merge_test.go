package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
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
	start := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
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
	if code != exitError || !strings.Contains(errOut, "both shard 0/4") {
		t.Fatalf("a shard twice: exit %d: %s", code, errOut)
	}
}

// served sums the demo backend's http_requests_total.
func served(t *testing.T, base string) int64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n int64
	for _, m := range regexp.MustCompile(`(?m)^http_requests_total\{.*\} (\d+)$`).FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		n += v
	}
	return n
}
