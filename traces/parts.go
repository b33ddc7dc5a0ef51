package traces

import (
	"slices"
	"time"
)

// A session is written in parts when its writer cannot or should not hold
// it whole: a capture hands the exchanges of a long session to the file as
// they finish (a dashboard polling all day, a socket open for hours), and a
// Writer splits a session too large for one record. Each part is a record
// of the session's id with its part number and whether more follow; a
// WebSocket still open when its part was written is marked Open, and the
// part after carries it again with the frames that came since. The Reader
// joins them (joinParts).

// socketKey tells the pieces of one WebSocket exchange in the parts of a
// session: when it began, and what it asked for.
type socketKey struct {
	at          time.Duration
	method, url string
}

// joinParts makes one session of the parts of a session, in the order
// they were read: the exchanges of all at their own times, from the
// earliest part's Start, in the order they began; the pieces of a socket
// in one exchange with its frames in order; the last part's description.
// It keeps each exchange's think gap as written. The parts' memory is
// shared, never written.
func joinParts(parts []*Session) *Session {
	last := parts[len(parts)-1]
	start := parts[0].Start
	n := 0
	for _, p := range parts {
		if p.Start.Before(start) {
			start = p.Start
		}
		n += len(p.Exchanges)
	}
	j := *last
	j.Start = start
	j.Exchanges = make([]Exchange, 0, n)
	open := map[socketKey]int{} // the index in j.Exchanges of a socket that goes on
	for _, p := range parts {
		shift := p.Start.Sub(start)
		for _, ex := range p.Exchanges {
			ex.Offset += shift
			ws := ex.WebSocket
			if ws == nil {
				j.Exchanges = append(j.Exchanges, ex)
				continue
			}
			c := *ws
			if shift != 0 {
				c.Frames = slices.Clone(ws.Frames)
				for k := range c.Frames {
					c.Frames[k].Offset += shift
				}
				c.Close.Offset += shift
			}
			ex.WebSocket = &c
			key := socketKey{ex.Offset, ex.Method, ex.URL}
			if i, ok := open[key]; ok {
				prev := &j.Exchanges[i]
				pw := prev.WebSocket
				pw.Frames = append(slices.Clip(pw.Frames), c.Frames...)
				pw.Close, pw.Open = c.Close, c.Open
				prev.Duration, prev.Error = ex.Duration, ex.Error
				if !c.Open {
					delete(open, key)
				}
				continue
			}
			if c.Open {
				open[key] = len(j.Exchanges)
			}
			j.Exchanges = append(j.Exchanges, ex)
		}
	}
	slices.SortStableFunc(j.Exchanges, func(a, b Exchange) int {
		switch {
		case a.Offset < b.Offset:
			return -1
		case a.Offset > b.Offset:
			return 1
		}
		return 0
	})
	if len(j.Exchanges) == 0 {
		j.Exchanges = nil
	} else if d := j.Exchanges[0].Offset; d < 0 {
		// An exchange began before the earliest part's Start (a part's
		// writer may give every part one Start): the session starts there.
		j.Start = j.Start.Add(d)
		for i := range j.Exchanges {
			ex := &j.Exchanges[i]
			ex.Offset -= d
			if ws := ex.WebSocket; ws != nil {
				ws.Frames = slices.Clone(ws.Frames)
				for k := range ws.Frames {
					ws.Frames[k].Offset -= d
				}
				ws.Close.Offset -= d
			}
		}
	}
	return &j
}
