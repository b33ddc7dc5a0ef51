package app

import (
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/thrive-loadtest/thrive/internal/lockedio"
	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

// TestReadingGrowsToTheTotal reads a real trace through reading's option in
// virtual time, half its sessions a second, with a buffer for the
// terminal: the line a second in shows part of the file's bytes, the line
// at two seconds all of them, and stop clears it.
func TestReadingGrowsToTheTotal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.thrv")
	size, err := synth.WriteFile(path, 300, 1)
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		var status lockedio.Buffer
		opts, stop := reading(&status, size)
		if len(opts) != 1 {
			t.Fatalf("%d options, want the one that counts", len(opts))
		}
		f, err := traces.Open(path, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n := 0
		for _, err := range f.Sessions() {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 150 {
				time.Sleep(time.Second) // virtual: the line is drawn at 1 s
				synctest.Wait()
				m := regexp.MustCompile(`^\r\x1b\[Kread [0-9.]+ [KM]?i?B of ` + regexp.QuoteMeta(traces.FormatBytes(size)) + ` \(([0-9]+)%\) · `).FindStringSubmatch(status.String())
				if m == nil {
					t.Fatalf("the line half way: %q", status.String())
				}
				if pc, _ := strconv.Atoi(m[1]); pc == 0 || pc == 100 {
					t.Errorf("half way, %d%% read: %q", pc, status.String())
				}
			}
		}
		before := len(status.String())
		time.Sleep(time.Second) // virtual: the line is drawn again at 2 s
		synctest.Wait()
		if got, want := status.String()[before:], "\r\x1b[K"+statusline.ProgressLine(size, size, 2*time.Second); got != want {
			t.Errorf("read whole: %q, want %q", got, want)
		}
		stop()
		if got := status.String()[before:]; got[len(got)-4:] != "\r\x1b[K" {
			t.Errorf("not cleared at the end: %q", got)
		}
	})
}

// TestReadingWithNoStatus: with no terminal, no option (the file is read
// directly) and a stop that does nothing.
func TestReadingWithNoStatus(t *testing.T) {
	opts, stop := reading(nil, 1<<20)
	stop()
	if opts != nil {
		t.Errorf("options with no status: %d", len(opts))
	}
}
