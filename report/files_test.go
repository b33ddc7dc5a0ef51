package report_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/report"
)

func TestFilesWriteAndRead(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	rec := report.NewRecorder(start)
	rec.Observe(&report.Sample{Kind: report.HTTP, Endpoint: "GET /", Profile: "browse", Intended: start, Sent: start, Done: 20 * time.Millisecond, Status: 200})
	res := rec.Result("http://t", "b1", start.Add(time.Second), report.RunParams{Users: 1})
	fs := report.Files{JSON: filepath.Join(dir, "r.json"), CSVPrefix: filepath.Join(dir, "run"), HTML: filepath.Join(dir, "r.html")}
	var said bytes.Buffer
	if err := fs.Write(&said, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"results written to " + fs.JSON, "Locust CSV files written to " + fs.CSVPrefix + "_*.csv", "HTML report written to " + fs.HTML} {
		if !strings.Contains(said.String(), want) {
			t.Errorf("Write said %q, not %q", said.String(), want)
		}
	}
	for _, p := range []string{fs.JSON, fs.HTML, fs.CSVPrefix + "_stats.csv", fs.CSVPrefix + "_failures.csv"} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
	back, err := report.ReadFile(fs.JSON)
	if err != nil || back.Requests != 1 || back.Label != "b1" {
		t.Fatalf("read back: %+v, %v", back, err)
	}
	if _, err := (report.Merger{}).MergeFiles([]string{fs.JSON, fs.JSON}); err == nil || !strings.Contains(err.Error(), "a whole run, not a shard") {
		t.Errorf("a whole run merged with itself: %v", err)
	}
	if _, err := (report.Merger{}).MergeFiles([]string{fs.JSON, fs.JSON + ".missing"}); err == nil || !strings.Contains(err.Error(), fs.JSON+".missing") {
		t.Errorf("a missing shard: %v", err)
	}
}

func TestFilesRefuse(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"missing result file", func() error { _, err := report.ReadFile(filepath.Join(dir, "none.json")); return err }(), "no such file"},
		{"result file not JSON", func() error { _, err := report.ReadFile(bad); return err }(), bad + ":"},
		{"a directory", report.Writable(dir), "it is a directory"},
		{"no such directory", report.Writable(filepath.Join(dir, "no", "r.json")), "no such file"},
		{"HTML in no directory", report.Files{HTML: filepath.Join(dir, "no", "r.html")}.Write(&bytes.Buffer{}, &report.Result{}), "no such file"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, tc.err, tc.want)
		}
	}
	if err := report.Writable(filepath.Join(dir, "new.json")); err != nil {
		t.Errorf("a new file in a writable directory: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("Writable left files behind: %v", entries)
	}
}

func TestParseShare(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
	}{{"10%", 0.1}, {"0.1", 0.1}, {"0%", 0}, {"150%", 1.5}} {
		if got, err := report.ParseShare(tc.in); err != nil || got != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"ten", "-5%", "%"} {
		if _, err := report.ParseShare(in); err == nil || !strings.Contains(err.Error(), "want a percentage such as 10%") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestVerdictsAndFailures(t *testing.T) {
	vs := report.Verdicts{{Criterion: "p95<1s", Pass: true}, {Criterion: "error_rate<1%"}, {Criterion: "rps>10"}}
	err := vs.Err()
	if f, ok := errors.AsType[*report.Failure](err); vs.Failed() != 2 || !ok || f.Error() != "2 of 3 criteria failed" {
		t.Errorf("failed %d, %v", vs.Failed(), err)
	}
	if err := (report.Verdicts{{Pass: true}}).Err(); err != nil {
		t.Errorf("all passed: %v", err)
	}
	if err := (&report.Comparison{Verdict: report.Regression, MaxRegress: 0.1}).Failed(); err == nil || err.Error() != "the candidate regressed (p95 slower by more than 10%, significantly)" {
		t.Errorf("regression: %v", err)
	}
	if err := (&report.Comparison{Verdict: report.NoChange}).Failed(); err != nil {
		t.Errorf("no change: %v", err)
	}
	var b bytes.Buffer
	if err := (&report.Comparison{Verdict: report.NoChange}).Write(&b, "yaml"); err == nil || !strings.Contains(err.Error(), "want text, markdown or json") {
		t.Errorf("format yaml: %v", err)
	}
	if err := (&report.Comparison{Verdict: report.NoChange}).Write(&b, "json"); err != nil || !strings.Contains(b.String(), `"verdict": "no change"`) {
		t.Errorf("json: %v %s", err, b.String())
	}
}
