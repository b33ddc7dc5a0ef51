package capture

import (
	"fmt"

	"github.com/thrive-loadtest/thrive/traces"
)

// String is the capture's status line: open and written sessions,
// exchanges, frames, bytes written, backend errors and drops.
func (st Stats) String() string {
	line := fmt.Sprintf("open %d · written %d sessions, %d exchanges, %d frames, %s · 502s %d · dropped %d",
		st.Open, st.Sessions, st.Exchanges, st.Frames, traces.FormatBytes(st.Bytes), st.BackendErrors, st.DroppedExchanges+st.DroppedSessions)
	if st.EndedEarly > 0 {
		line += fmt.Sprintf(" · %d ended early (buffer half full)", st.EndedEarly)
	}
	if st.TLSFailures > 0 {
		line += fmt.Sprintf(" · %d clients refused the CA", st.TLSFailures)
	}
	if st.ProxyAuthFailures > 0 {
		line += fmt.Sprintf(" · %d 407s", st.ProxyAuthFailures)
	}
	if st.Undecodable > 0 {
		line += fmt.Sprintf(" · %d bodies did not decode (kept as recorded, not redacted inside)", st.Undecodable)
	}
	if st.SinkErr != nil {
		line += " · " + st.SinkErr.Error()
	}
	return line
}
