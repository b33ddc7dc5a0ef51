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
