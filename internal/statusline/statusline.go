// Package statusline redraws one line of live figures on a terminal, as
// thrive capture and thrive replay show theirs on stderr.
package statusline

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Terminal returns w when it is a terminal, nil otherwise: a status line
// that a file or a pipe received would be noise.
func Terminal(w io.Writer) io.Writer {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return f
}

// Start redraws line() on w every second until the returned stop is
// called, which clears the line and returns once nothing more is drawn.
// A nil w draws nothing.
func Start(w io.Writer, line func() string) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprint(w, "\r\033[K"+line())
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}
