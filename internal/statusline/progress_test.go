package statusline

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		elapsed     time.Duration
		want        string
	}{
		{12 << 20, 48 << 20, 3 * time.Second, "read 12.0 MiB of 48.0 MiB (25%) · 4.0 MiB/s · 9s left"},
		{0, 48 << 20, 0, "read 0 B of 48.0 MiB (0%) · 0 B/s"}, // no rate yet: no time left
		{1 << 30, 3 << 30, 2 * time.Second, "read 1.0 GiB of 3.0 GiB (33%) · 512.0 MiB/s · 4s left"},
		{50 << 10, 0, 2 * time.Second, "read 50.0 KiB · 25.0 KiB/s"},                            // standard input: no total
		{1 << 20, 1 << 10, time.Second, "read 1.0 MiB of 1.0 KiB (100%) · 1.0 MiB/s · 0s left"}, // a file that grew
	} {
		if got := ProgressLine(c.done, c.total, c.elapsed); got != c.want {
			t.Errorf("ProgressLine(%d, %d, %v) = %q, want %q", c.done, c.total, c.elapsed, got, c.want)
		}
	}
}

func TestClock(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 999 * time.Millisecond: "0s", 9 * time.Second: "9s",
		245 * time.Second: "4m05s", time.Hour + 2*time.Minute + 3*time.Second: "1h02m03s", 30 * time.Hour: "30h00m00s",
	} {
		if got := Clock(d); got != want {
			t.Errorf("Clock(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestProgressCountsAFile reads a real file through a Progress: every
// byte counted, the line at its end the whole file.
func TestProgressCountsAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 3<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	p := NewProgress(3<<20, start)
	if n, err := io.Copy(io.Discard, p.Reader(f)); err != nil || n != 3<<20 || p.Done() != n {
		t.Fatalf("copied %d (%v), counted %d", n, err, p.Done())
	}
	if got := p.Line(start.Add(time.Second)); got != "read 3.0 MiB of 3.0 MiB (100%) · 3.0 MiB/s · 0s left" {
		t.Errorf("at the end: %q", got)
	}
}
