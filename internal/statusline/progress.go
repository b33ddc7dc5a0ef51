package statusline

import (
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// A Progress counts the bytes read of a long read (an import, a trace
// read whole) for a status line: how far, how fast, how long still. It
// costs one atomic add per Read of its readers, nothing per record. It is
// safe for concurrent use; its zero value is not: make it with
// NewProgress.
type Progress struct {
	total int64 // bytes to read; 0 when not known (standard input)
	start time.Time
	done  atomic.Int64
}

// NewProgress returns the progress of reading total bytes (0: a size not
// known) from start.
func NewProgress(total int64, start time.Time) *Progress {
	return &Progress{total: max(total, 0), start: start}
}

// Reader returns r counting what is read from it into p.
func (p *Progress) Reader(r io.Reader) io.Reader { return &countingReader{r: r, p: p} }

// Done returns the bytes read so far.
func (p *Progress) Done() int64 { return p.done.Load() }

// Line writes p at now: the bytes done of the total and its share, the
// mean rate since the start and, from it, the time left; only the bytes
// and the rate when the total is not known.
func (p *Progress) Line(now time.Time) string {
	return ProgressLine(p.done.Load(), p.total, now.Sub(p.start))
}

// ProgressLine writes the progress of done bytes of total (0: not known)
// after elapsed: "12.0 MiB of 48.0 MiB (25%) · 4.0 MiB/s · 9s left".
func ProgressLine(done, total int64, elapsed time.Duration) string {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed.Seconds()
	}
	speed := traces.FormatBytes(int64(rate)) + "/s"
	if total <= 0 {
		return fmt.Sprintf("read %s · %s", traces.FormatBytes(done), speed)
	}
	line := fmt.Sprintf("read %s of %s (%d%%) · %s", traces.FormatBytes(done), traces.FormatBytes(total), min(100*done/total, 100), speed)
	if rate > 0 {
		left := time.Duration(float64(max(total-done, 0)) / rate * float64(time.Second))
		line += " · " + Clock(left) + " left"
	}
	return line
}

// Clock writes d to the second, in the largest units it needs: "9s",
// "4m05s", "1h02m03s". A negative d is written as 0s.
func Clock(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	switch {
	case s < 60:
		return strconv.FormatInt(s, 10) + "s"
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm%02ds", s/3600, s/60%60, s%60)
}

// A countingReader adds what each Read returns to its Progress.
type countingReader struct {
	r io.Reader
	p *Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.done.Add(int64(n))
	return n, err
}
