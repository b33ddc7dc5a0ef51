package replay

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/report"
)

// socket replays a recorded WebSocket: it connects when due, sends each
// client message at its recorded offset from the session's start t0 (or,
// with think pacing, once the reply to the one before has come), and times
// each reply from the message to its first and to its last frame, the last
// being the one that makes as many frames as the recording had.
func (u *user) socket(active context.Context, stop time.Time, st *step, due, t0 time.Time, sv *sessionVars) {
	e := u.e
	scheme := "ws://"
	if e.target.tls {
		scheme = "wss://"
	}
	h := http.Header{}
	for _, kv := range st.headers {
		name := string(kv[0])
		if strings.EqualFold(name, "Origin") || strings.EqualFold(name, "User-Agent") ||
			strings.EqualFold(name, "Authorization") || strings.HasPrefix(strings.ToLower(name), "x-") {
			h.Add(name, string(kv[1]))
		}
	}
	if e.cfg.recorded {
		for _, kv := range st.recorded {
			h.Set(string(kv[0]), string(kv[1]))
		}
	} else if line := u.jar.appendHeader(nil, st.uri, time.Now()); len(line) > 0 {
		h.Set("Cookie", strings.TrimSuffix(strings.TrimPrefix(string(line), "Cookie: "), "\r\n"))
	}
	for _, ec := range st.echoes {
		if v, ok := u.jar.value(ec.cookie); ok && !e.cfg.recorded && e.cfg.correlate {
			h.Set(ec.header, v)
		}
	}
	for _, kv := range e.cfg.headers {
		h.Set(kv[0], kv[1])
	}
	d := websocket.Dialer{
		NetDial:          func(_, addr string) (net.Conn, error) { return e.dial(addr) },
		HandshakeTimeout: e.cfg.timeout,
		TLSClientConfig:  e.tls,
	}
	smp := report.Sample{Kind: report.WSConnect, Profile: u.profile, Endpoint: st.endpoint, Intended: due, Sent: time.Now()}
	conn, resp, err := d.DialContext(u.hard, scheme+e.target.host+string(st.uri), h)
	smp.Done = time.Since(smp.Sent)
	smp.FirstByte = smp.Done
	if resp != nil {
		smp.Status = resp.StatusCode
		resp.Body.Close()
	}
	if err != nil && resp == nil {
		smp.Err = classify(err)
	}
	u.sink.Observe(&smp)
	if err != nil {
		return
	}
	defer conn.Close()
	e.wsConns.Add(1)

	// The reader hands each server message's arrival time to the sender.
	arrivals := make(chan time.Time, 1024)
	go func() {
		defer close(arrivals)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
			e.wsReceived.Add(1)
			select {
			case arrivals <- time.Now():
			default: // nobody waits for replies beyond the recorded ones
			}
		}
	}()
	ws := st.ws
	last := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for _, f := range ws.frames {
		// A message goes out at its recorded offset, but not before the
		// reply to the one before has come: a chat client waits for its
		// answer. Waiting on the target is not the generator's lag.
		at := t0.Add(u.scaled(f.offset))
		if e.cfg.pacing == Think || last.After(at) {
			at = last
		}
		if !at.Before(stop) || !sleepUntil(active, timer, at) {
			break
		}
		rs := report.Sample{Kind: report.WSReply, Profile: u.profile, Endpoint: st.endpoint, Intended: at, Sent: time.Now(), Status: 101}
		_ = conn.SetWriteDeadline(rs.Sent.Add(e.cfg.timeout))
		payload := f.payload
		if sv != nil {
			for _, sub := range sv.substitutions(st) {
				payload = bytes.ReplaceAll(payload, []byte(sub[0]), []byte(sub[1]))
			}
		}
		e.wsSent.Add(1)
		if err := conn.WriteMessage(f.opcode, payload); err != nil {
			rs.Err = classify(err)
			u.sink.Observe(&rs)
			return
		}
		timeout := time.NewTimer(e.cfg.timeout)
		got := 0
	replies:
		for got < f.replies {
			select {
			case t, ok := <-arrivals:
				if !ok {
					rs.Err = report.ErrClosed
					break replies
				}
				got++
				if got == 1 {
					rs.FirstByte = t.Sub(rs.Sent)
				}
				rs.Done = t.Sub(rs.Sent)
				last = t
			case <-timeout.C:
				rs.Err = report.ErrTimeout
				break replies
			case <-u.hard.Done():
				timeout.Stop()
				return
			}
		}
		timeout.Stop()
		if f.replies == 0 {
			last = time.Now()
		}
		u.sink.Observe(&rs)
	}
	closeAt := t0.Add(u.scaled(ws.close))
	if e.cfg.pacing == Think {
		closeAt = last
	}
	if closeAt.After(stop) {
		closeAt = stop
	}
	sleepUntil(active, timer, closeAt)
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}
