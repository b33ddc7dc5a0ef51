package app_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/internal/app"
	"github.com/thrive-loadtest/thrive/internal/lockedio"
	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

const demoPcap = "../../capture/passive/testdata/demo.pcap"

// TestImportProgress imports a real packet capture from standard input in
// virtual time, half of it first: the status line, drawn a second in,
// shows the bytes read with no total (standard input has no size), and
// is cleared at the end.
func TestImportProgress(t *testing.T) {
	pcap, err := os.ReadFile(demoPcap)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		var status lockedio.Buffer
		im := app.Import{Files: []string{"-"}, Ports: []int{8000}, In: pr, Sink: &capture.FileSink{Path: filepath.Join(dir, "t.thrv")}, Out: io.Discard, Status: &status}
		done := make(chan error)
		go func() { done <- im.Run() }()
		half := len(pcap) / 2
		if _, err := pw.Write(pcap[:half]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // virtual: the line is drawn at 1 s
		synctest.Wait()
		line := status.String()
		if !regexp.MustCompile(`^\r\x1b\[Kread [0-9.]+ [KM]iB · [0-9.]+ [KM]?i?B/s$`).MatchString(line) || strings.Contains(line, " of ") {
			t.Errorf("the status line half way: %q", line)
		}
		if _, err := pw.Write(pcap[half:]); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := status.String(); !strings.HasSuffix(got, "\r\x1b[K") {
			t.Errorf("not cleared at the end: %q", got)
		}
	})
}

// TestFilesSize: the total of real files; none for standard input or a
// file that is not there.
func TestFilesSize(t *testing.T) {
	fi, err := os.Stat(demoPcap)
	if err != nil {
		t.Fatal(err)
	}
	if got := app.FilesSize([]string{demoPcap, demoPcap}); got != 2*fi.Size() {
		t.Errorf("two files: %d bytes, want %d", got, 2*fi.Size())
	}
	if got := app.FilesSize([]string{demoPcap, "-"}); got != 0 {
		t.Errorf("with standard input: %d, want 0", got)
	}
	if got := app.FilesSize([]string{filepath.Join(t.TempDir(), "none")}); got != 0 {
		t.Errorf("a file not there: %d, want 0", got)
	}
}

// TestImportNoStatusNoProgress: with no Status (no terminal), an import
// writes no progress to its output.
func TestImportNoStatusNoProgress(t *testing.T) {
	var out bytes.Buffer
	im := app.Import{Files: []string{demoPcap}, Ports: []int{8000}, Sink: &capture.FileSink{Path: filepath.Join(t.TempDir(), "t.thrv")}, Out: &out}
	if err := im.Run(); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); strings.Contains(s, "\x1b[K") || strings.Contains(s, "B/s") {
		t.Errorf("progress in the output:\n%s", s)
	}
}

// TestTracesStatusLeavesOutputAlone runs each command that reads a trace
// whole with and without a status line, in virtual time (a read takes no
// time there, so no line is drawn): what each writes to Out is the same
// byte for byte, and the status only cleared.
func TestTracesStatusLeavesOutputAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.thrv")
	if _, err := synth.WriteFile(path, 60, 1); err != nil {
		t.Fatal(err)
	}
	from, err := traces.ParseBound("1m")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "f.thrv")
	for _, tc := range []struct {
		name string
		run  func(tr *app.Traces) error
	}{
		{"inspect", func(tr *app.Traces) error { return tr.Inspect(path, 10, false) }},
		{"inspect --json", func(tr *app.Traces) error { return tr.Inspect(path, 10, true) }},
		{"cat", func(tr *app.Traces) error { return tr.Cat(path) }},
		{"filter", func(tr *app.Traces) error { return tr.Filter(path, out, traces.Filter{Profiles: []string{"chat"}}) }},
		{"filter --from", func(tr *app.Traces) error { return tr.Filter(path, out, traces.Filter{From: from}) }},
		{"correlations", func(tr *app.Traces) error { return tr.Correlations(path) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var plain, shown bytes.Buffer
			if err := tc.run(&app.Traces{Out: &plain}); err != nil {
				t.Fatal(err)
			}
			var status lockedio.Buffer
			synctest.Test(t, func(t *testing.T) {
				if err := tc.run(&app.Traces{Out: &shown, Status: &status}); err != nil {
					t.Fatal(err)
				}
			})
			if plain.Len() == 0 || !bytes.Equal(plain.Bytes(), shown.Bytes()) {
				t.Errorf("the output with a status line (%d bytes) is not the output without (%d bytes)", shown.Len(), plain.Len())
			}
			if got := status.String(); got != "\r\x1b[K" {
				t.Errorf("the status: %q, want it cleared only", got)
			}
		})
	}
}

// TestTracesCatProgress runs cat in virtual time into a pipe nobody reads
// yet: a second in, the status line shows the bytes of the trace read so
// far of its size; once the pipe is read to the end, the output is what cat
// writes with no status line, and the line is cleared.
func TestTracesCatProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.thrv")
	size, err := synth.WriteFile(path, 120, 1)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := (&app.Traces{Out: &want}).Cat(path); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		var status lockedio.Buffer
		done := make(chan error)
		go func() {
			err := (&app.Traces{Out: pw, Status: &status}).Cat(path)
			pw.CloseWithError(err)
			done <- err
		}()
		time.Sleep(1500 * time.Millisecond) // virtual: the line is drawn at 1 s
		synctest.Wait()
		line := regexp.MustCompile(`^\r\x1b\[Kread [0-9.]+ [KM]?i?B of ` + regexp.QuoteMeta(traces.FormatBytes(size)) + ` \([0-9]+%\) · [0-9.]+ [KM]?i?B/s · [0-9hms]+ left$`)
		if !line.MatchString(status.String()) {
			t.Errorf("the status line a second in: %q", status.String())
		}
		got, err := io.ReadAll(pr)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("cat with a status line wrote %d bytes, %d without", len(got), want.Len())
		}
		if s := status.String(); !strings.HasSuffix(s, "\r\x1b[K") {
			t.Errorf("not cleared at the end: %q", s)
		}
	})
}

// TestTracesCatToATerminal: when cat's output is a terminal (a character
// device, as /dev/null is to statusline.Terminal), the lines are the
// progress: no status line is drawn, nor cleared.
func TestTracesCatToATerminal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.thrv")
	if _, err := synth.WriteFile(path, 10, 1); err != nil {
		t.Fatal(err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if statusline.Terminal(null) == nil {
		t.Skipf("%s is not a character device here", os.DevNull)
	}
	var status lockedio.Buffer
	if err := (&app.Traces{Out: null, Status: &status}).Cat(path); err != nil {
		t.Fatal(err)
	}
	if s := status.String(); s != "" {
		t.Errorf("the status with cat's output a terminal: %q", s)
	}
}

// TestTracesRepairStatusLeavesOutputAlone repairs the same trace and
// journal twice, with and without a status line, in virtual time: what
// repair says is the same byte for byte, and the status only cleared.
func TestTracesRepairStatusLeavesOutputAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.thrv")
	killed := func() {
		if _, err := synth.WriteFile(path, 20, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := synth.WriteFile(path+capture.JournalSuffix, 25, 2); err != nil { // five sessions more
			t.Fatal(err)
		}
	}
	killed()
	var plain, shown bytes.Buffer
	if err := (&app.Traces{Out: &plain}).Repair(path); err != nil {
		t.Fatal(err)
	}
	killed()
	var status lockedio.Buffer
	synctest.Test(t, func(t *testing.T) {
		if err := (&app.Traces{Out: &shown, Status: &status}).Repair(path); err != nil {
			t.Fatal(err)
		}
	})
	if !strings.Contains(plain.String(), "5 sessions (") || !bytes.Equal(plain.Bytes(), shown.Bytes()) {
		t.Errorf("with a status line:\n%s\nwithout:\n%s", shown.String(), plain.String())
	}
	if got := status.String(); got != "\r\x1b[K" {
		t.Errorf("the status: %q, want it cleared only", got)
	}
}
