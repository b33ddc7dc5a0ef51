package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
	"github.com/thrive-loadtest/thrive/traces/tracetest"
)

// thriveBin is the thrive binary the tests that need processes start,
// built by TestMain (with -race when the tests have it), so that a process
// a command starts (demo serve --processes) is thrive itself.
func thriveBin() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("thrive-tests-%d", os.Getpid()), "thrive")
}

func TestMain(m *testing.M) {
	dir := filepath.Dir(thriveBin())
	args := []string{"build", "-o", thriveBin()}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.CommandContext(context.Background(), "go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build of thrive for the tests: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// thrive runs the command in-process and returns its exit code and output.
func thrive(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// sampleTrace writes n corpus sessions to a trace in a temporary directory.
func sampleTrace(t *testing.T, n int) (string, []*traces.Session) {
	t.Helper()
	ss := synth.New(11).Sessions(n)
	path := filepath.Join(t.TempDir(), "sample.thrv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := traces.NewWriter(f, traces.Meta{Source: "test", Redacted: []string{"header:Cookie"}}, traces.WithBlockSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, ss
}

func TestHelpListsCommands(t *testing.T) {
	code, out, _ := thrive(t, "--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, c := range []string{"capture", "replay", "traces", "compare", "merge", "demo", "version", "completion"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("help does not list %q:\n%s", c, out)
		}
	}
}

func TestUnknownFlagIsUsageError(t *testing.T) {
	code, _, errOut := thrive(t, "traces", "inspect", "--nope", "x")
	if code != exitUsage || !strings.Contains(errOut, "unknown flag") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := thrive(t, "version")
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("trace format %d", traces.Version)) {
		t.Fatalf("exit %d, out %q", code, out)
	}
}

func TestInspectJSON(t *testing.T) {
	path, ss := sampleTrace(t, 120)
	want := map[string]int{}
	exchanges, frames, sockets := 0, 0, 0
	for _, s := range ss {
		want[s.Profile]++
		exchanges += len(s.Exchanges)
		for _, ex := range s.Exchanges {
			if ex.WebSocket != nil {
				sockets++
				frames += len(ex.WebSocket.Frames)
			}
		}
	}
	code, out, errOut := thrive(t, "traces", "inspect", "--json", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got traces.Inspection
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if got.Sessions != len(ss) || got.Exchanges != exchanges || got.Frames != frames || got.WebSockets != sockets {
		t.Fatalf("sessions %d exchanges %d frames %d sockets %d; want %d %d %d %d",
			got.Sessions, got.Exchanges, got.Frames, got.WebSockets, len(ss), exchanges, frames, sockets)
	}
	if !reflect.DeepEqual(got.Profiles, want) {
		t.Fatalf("profiles %v, want %v", got.Profiles, want)
	}
	if got.Version != traces.Version || got.Source != "test" || !reflect.DeepEqual(got.Redacted, []string{"header:Cookie"}) {
		t.Fatalf("header fields: %+v", got)
	}
	if len(got.TopEndpoints) == 0 || got.TopEndpoints[0].Name != "GET /api/projects/" {
		t.Fatalf("top endpoints %v", got.TopEndpoints)
	}
	// The raw map must have the field names the issue promises.
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sessions", "exchanges", "ws_frames", "profiles"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}

func TestInspectText(t *testing.T) {
	path, _ := sampleTrace(t, 30)
	code, out, _ := thrive(t, "traces", "inspect", path)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{fmt.Sprintf("format version %d", traces.Version), "sessions    30", "top endpoints", "GET /api/projects/{id}/", "redacted    header:Cookie"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCatRoundTrips(t *testing.T) {
	path, ss := sampleTrace(t, 40)
	code, out, errOut := thrive(t, "traces", "cat", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	i := 0
	for ; sc.Scan(); i++ {
		var s traces.Session
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		a, _ := json.Marshal(&s)
		b, _ := json.Marshal(ss[i])
		if !bytes.Equal(a, b) {
			t.Fatalf("line %d does not match session %s", i+1, ss[i].ID)
		}
		if s.ID != ss[i].ID || len(s.Exchanges) != len(ss[i].Exchanges) {
			t.Fatalf("line %d: got %s with %d exchanges", i+1, s.ID, len(s.Exchanges))
		}
	}
	if i != len(ss) {
		t.Fatalf("%d lines, want %d", i, len(ss))
	}
}

func readTrace(t *testing.T, path string) []*traces.Session { return tracetest.ReadFile(t, path) }

func TestFilter(t *testing.T) {
	path, ss := sampleTrace(t, 200)
	first := ss[0].Start
	for _, s := range ss {
		if s.Start.Before(first) {
			first = s.Start
		}
	}
	count := func(keep func(*traces.Session) bool) []string {
		var ids []string
		for _, s := range ss {
			if keep(s) {
				ids = append(ids, s.ID)
			}
		}
		return ids
	}
	lo, hi := first.Add(time.Minute), first.Add(3*time.Minute)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"profile", []string{"--profile", "chat"}, count(func(s *traces.Session) bool { return s.Profile == "chat" })},
		{"two profiles", []string{"--profile", "chat,import"}, count(func(s *traces.Session) bool { return s.Profile != "browse" })},
		{"relative window", []string{"--from", "1m", "--to", "3m"}, count(func(s *traces.Session) bool { return !s.Start.Before(lo) && s.Start.Before(hi) })},
		{"absolute window and profile", []string{"--from", lo.Format(time.RFC3339Nano), "--profile", "browse"},
			count(func(s *traces.Session) bool { return !s.Start.Before(lo) && s.Profile == "browse" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.thrv")
			code, _, errOut := thrive(t, append([]string{"traces", "filter", path, "--out", out}, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got []string
			for _, s := range readTrace(t, out) {
				got = append(got, s.ID)
			}
			if len(tc.want) == 0 || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("kept %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterRefusesBadInput(t *testing.T) {
	path, _ := sampleTrace(t, 3)
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no out", []string{"traces", "filter", path}, "--out is required"},
		{"same file", []string{"traces", "filter", path, "--out", path}, "is the input file"},
		{"bad bound", []string{"traces", "filter", path, "--out", path + ".x", "--from", "yesterday"}, `--from "yesterday"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := thrive(t, tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
		})
	}
}

func TestDamagedTraceKeepsPrefix(t *testing.T) {
	path, ss := sampleTrace(t, 100)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.thrv")
	if err := os.WriteFile(cut, data[:len(data)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := thrive(t, "traces", "inspect", "--json", cut)
	if code != exitError || !strings.Contains(errOut, cut+": block at byte") || !strings.Contains(errOut, "truncated") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var got traces.Inspection
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Sessions == 0 || got.Sessions >= len(ss) || got.Damage == "" {
		t.Fatalf("inspect of a cut file: %d sessions, damage %q", got.Sessions, got.Damage)
	}
	// filter copies the intact prefix and still fails.
	out2 := filepath.Join(t.TempDir(), "prefix.thrv")
	code, _, _ = thrive(t, "traces", "filter", cut, "--out", out2)
	if code != exitError {
		t.Fatalf("filter of a cut file: exit %d", code)
	}
	if n := len(readTrace(t, out2)); n != got.Sessions {
		t.Fatalf("filter kept %d sessions, inspect saw %d", n, got.Sessions)
	}
}

func TestNotATraceFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(path, []byte(`{"not":"a trace"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := thrive(t, "traces", "cat", path)
	if code != exitError || !strings.Contains(errOut, path+": header at byte 0: not a thrive trace") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestSample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.thrv")
	code, _, errOut := thrive(t, "traces", "sample", "--sessions", "25", "--out", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := len(readTrace(t, path)); n != 25 {
		t.Fatalf("%d sessions, want 25", n)
	}
}

func TestTracesCorrelations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sample.thrv")
	if code, _, errOut := thrive(t, "traces", "sample", "--sessions", "40", "--out", path); code != exitOK {
		t.Fatalf("sample: %s", errOut)
	}
	code, out, errOut := thrive(t, "traces", "correlations", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// The synthetic imports answer with a job id that the job polls send.
	if !strings.Contains(out, "POST /api/import/github/ $.job_id") || !strings.Contains(out, "GET /api/import/jobs/{id}/ path segment 4 (") {
		t.Fatalf("output lacks the import job rule:\n%s", out)
	}
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("disable:\n  - 'POST /api/import/*/ $.job_id'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = thrive(t, "traces", "correlations", path, "--correlation-rules", rules)
	if code != exitOK || strings.Contains(out, "$.job_id") || !strings.Contains(out, "$.project_id") {
		t.Fatalf("exit %d with the job rules disabled:\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(rules, []byte("add:\n  - from: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := thrive(t, "traces", "correlations", path, "--correlation-rules", rules); code != exitUsage || !strings.Contains(errOut, "add 1") {
		t.Fatalf("a bad rules file: exit %d, %s", code, errOut)
	}
}

// TestTracesNoTerminalNoProgress: with stderr not a terminal (a buffer
// here, a file or a pipe in use), the commands that read a trace whole
// write nothing to it: no progress, nor its clearing.
func TestTracesNoTerminalNoProgress(t *testing.T) {
	path, _ := sampleTrace(t, 40)
	out := filepath.Join(t.TempDir(), "f.thrv")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"inspect", []string{"inspect", path}},
		{"inspect json", []string{"inspect", "--json", path}},
		{"cat", []string{"cat", path}},
		{"filter", []string{"filter", path, "--out", out, "--from", "1m"}},
		{"correlations", []string{"correlations", path}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, errOut := thrive(t, append([]string{"traces"}, tc.args...)...)
			if code != exitOK || stdout == "" || errOut != "" {
				t.Errorf("exit %d, %d bytes out, stderr %q", code, len(stdout), errOut)
			}
		})
	}
}
