package passive

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/gopacket/layers"
)

// drainFor bounds how long a stopped capture reads what is queued.
const drainFor = time.Second

// errQuiet is what a read returns when no packet came for a while.
var errQuiet = errors.New("no packet")

// Live reads the packets of the interface h until ctx ends, and hands on
// their exchanges as Read does (add, advance); f's hosts select among the
// servers on the ports h was opened for. Once a second, and when no packet
// came for a while, the clock moves to now: what is missing is taken as
// lost after gapWait, and progress is given a copy of the counts so far.
// Once ctx ends, the packets the kernel queued until then are read (for
// drainFor at most); then the exchanges still open are handed on
// incomplete.
func Live(ctx context.Context, h *Interface, f Filter, add AddFunc, advance func(time.Time), progress func(Stats)) (Stats, error) {
	rd := newReader(f, add)
	last := time.Now()
	report := func(now time.Time) {
		if progress != nil && now.Sub(last) >= flushTick {
			last = now
			st := rd.stats
			st.Dropped = maps.Clone(st.Dropped)
			progress(st)
		}
	}
	var drainUntil time.Time
	for {
		if ctx.Err() != nil {
			// Stopped: what the kernel queued before the stop is read
			// first, until the link is quiet or drainFor has passed.
			if drainUntil.IsZero() {
				drainUntil = time.Now().Add(drainFor)
			} else if time.Now().After(drainUntil) {
				break
			}
		}
		data, ci, err := h.read()
		if errors.Is(err, errQuiet) {
			if ctx.Err() != nil {
				break
			}
			now := time.Now()
			rd.flush(now)
			advance(now)
			report(now)
			continue
		}
		if err != nil {
			rd.finish()
			return rd.stats, fmt.Errorf("passive: interface %s: %w", h.name, err)
		}
		rd.stats.Packets++
		rd.packet(data, ci, layers.LinkTypeRaw)
		advance(ci.Timestamp)
		report(ci.Timestamp)
	}
	rd.finish()
	return rd.stats, nil
}
