package statusline

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/thrive-loadtest/thrive/internal/lockedio"
)

// TestStartRedrawsEverySecond, in virtual time: a line a second, each
// drawn over the last, and cleared when stopped; nothing after.
func TestStartRedrawsEverySecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w lockedio.Buffer
		n := 0
		stop := Start(&w, func() string { n++; return "line " + strconv.Itoa(n) })
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		if got := strings.Count(w.String(), "\r\033[Kline "); got != 3 {
			t.Fatalf("%d lines in 3.5 s: %q", got, w.String())
		}
		stop()
		stop() // twice is once
		after := w.String()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !strings.HasSuffix(after, "line 3\r\033[K") || w.String() != after {
			t.Fatalf("after stop: %q, then %q", after, w.String())
		}
	})
}

func TestTerminal(t *testing.T) {
	if Terminal(&bytes.Buffer{}) != nil {
		t.Error("a buffer taken for a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if Terminal(f) != nil {
		t.Error("a file taken for a terminal")
	}
	// Start on no terminal draws nothing, and stops.
	Start(nil, func() string { t.Error("drawn"); return "" })()
}
