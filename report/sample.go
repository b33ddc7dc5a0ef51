package report

import "time"

// Kind says what a Sample measured.
type Kind uint8

// Kinds of samples.
const (
	// HTTP is one request and its whole response.
	HTTP Kind = iota
	// WSConnect is a WebSocket handshake.
	WSConnect
	// WSReply is a client WebSocket message and the server's reply to it.
	WSReply
	// LongPoll is an HTTP request that waits for its answer by design (a
	// long-polling feed): its latency is the wait, not the target's
	// slowness, and it is kept apart from the other requests'.
	LongPoll
	// Skipped is an HTTP request not sent because a value it needed did
	// not come (its source failed, or its live answer lacked it): Err
	// says which ("skipped: depends on …"). It has no latency.
	Skipped
)

// ErrorKind names why a request failed at the transport level; empty when it
// did not.
type ErrorKind string

// Error kinds.
const (
	ErrRefused ErrorKind = "connect refused"
	ErrTimeout ErrorKind = "timeout"
	ErrReset   ErrorKind = "connection reset"
	ErrClosed  ErrorKind = "connection closed"
	ErrTLS     ErrorKind = "tls"
	ErrPorts   ErrorKind = "out of local ports"
	ErrFiles   ErrorKind = "out of open files"
	// ErrStopped marks a request cut because the run ended or was stopped
	// and the stop timeout passed.
	ErrStopped ErrorKind = "stopped"
	ErrOther   ErrorKind = "other"
)

// Sample is one measurement. The engine that fills it keeps ownership: a
// Recorder copies what it needs and keeps no pointer to it.
type Sample struct {
	Kind     Kind
	Profile  string
	Endpoint string
	// Status is the response status; 0 when the request failed.
	Status int
	Err    ErrorKind
	// Intended is when the plan said to send; Sent when it was sent.
	Intended, Sent time.Time
	// FirstByte and Done are the times from Sent to the first and to the
	// last byte of the answer (for WSReply: its first and last frame).
	FirstByte, Done time.Duration
	// Expected is the status the recording had, which an answer's status
	// is judged against; 0 judges every status of 400 or more a failure
	// (--strict-status).
	Expected int
	// Waited is how much later than scheduled it was sent because it
	// waited for the live answers or replies it followed when recorded;
	// Intended includes it (the schedule lag and latency do not).
	Waited time.Duration
	// Silent marks a WSReply that ended by a silence rather than with a
	// frame shaped like the recorded reply's last.
	Silent bool
	// Answer, when not nil, is what the answer looked like, for the
	// sketch of the endpoint's answers (AnswerStats). The Recorder reads
	// it during Observe and keeps nothing of it.
	Answer *Answer
}

// Failed reports whether the sample counts as a failure: a transport error
// (but a request cut by the run's end), a 5xx, a 4xx where the recording
// had no 4xx (see AsRecorded), or a WebSocket handshake that did not
// switch protocols. A 429 never is: it is
// the target shedding load as designed, which load tests expect and count
// apart (status_429), so it does not make the error rate.
func (s *Sample) Failed() bool {
	switch {
	case s.Kind == Skipped:
		return false // its source's failure is the failure
	case s.Err == ErrStopped:
		// Cut by the run's end, not by the target (a poll held open for
		// a socket the cut session never opened): counted apart, as k6
		// counts interrupted iterations.
		return false
	case s.Err != "":
		return true
	case s.Kind == WSConnect:
		return s.Status != 101 && s.Status != 429
	case s.Status == 429:
		return false
	case s.Status >= 500:
		return true
	case s.Status >= 400:
		return !s.AsRecorded()
	}
	return false
}

// AsRecorded reports whether the sample is a 4xx (but 429) answered where
// the recording had a 4xx too: a favicon that was missing then and is
// missing now is the application as it is, not a failure.
func (s *Sample) AsRecorded() bool {
	return s.Err == "" && s.Status >= 400 && s.Status < 500 && s.Status != 429 && s.Expected >= 400 && s.Expected < 500
}

// Lag returns how late the sample was sent: Sent - Intended.
func (s *Sample) Lag() time.Duration { return s.Sent.Sub(s.Intended) }
