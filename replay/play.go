package replay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
	"golang.org/x/sys/unix"
)

// Play runs plan from start as Run does, recording into rec (a new
// Recorder from start when nil; give one to read it live), and returns
// what the run measured as a result file: histograms, per-second series,
// WebSocket figures, the run's label and params. The error is Run's.
func (e *Engine) Play(ctx context.Context, plan *scheduler.Plan, start time.Time, rec *report.Recorder, label string, params report.RunParams) (*report.Result, error) {
	if rec == nil {
		rec = report.NewRecorder(start)
	}
	rec.CountUsers(func() int64 { return e.Status().Users })
	err := e.Run(ctx, plan, start, rec)
	res := rec.Result(e.targetURL, label, time.Now(), params)
	res.WebSocket = e.WebSocketStats()
	res.RetriedStale = e.retriedStale.Load()
	res.Polls = report.PollStats{Loops: e.pollLoops.Load(), Polls: e.polls.Load(), Unfinished: e.pollsUnfinished.Load()}
	if e.cfg.steer != nil {
		for _, c := range e.cfg.steer.Changes() {
			res.NoteChange(report.UsersChange{AtS: c.At.Seconds(), Users: c.Users, SpawnRate: c.SpawnRate})
		}
	}
	return res, err
}

// Unreachable reports a run in which the target answered nothing at all,
// saying why as far as the errors tell: refused connections, no local
// ports left, or the kinds of errors there were.
func Unreachable(res *report.Result, target string) error {
	if res.Requests == 0 || res.Failures != res.Requests {
		return nil
	}
	kinds := map[report.ErrorKind]int64{}
	for _, e := range res.Endpoints {
		for k, n := range e.Errors {
			kinds[k] += n
		}
		if len(e.StatusCodes) > 0 {
			return nil // answered, if badly
		}
	}
	switch {
	case kinds[report.ErrRefused] > 0:
		return fmt.Errorf("the target %s refused every connection: is it running, and on that port?", target)
	case kinds[report.ErrPorts] > 0:
		return &PortsError{Target: target}
	}
	var parts []string
	unreadable := true // every error an answer that came but could not be read
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
		unreadable = unreadable && strings.HasPrefix(string(k), "answer: ")
	}
	if unreadable {
		hint := ": is it an HTTP server, and on that port?"
		if kinds[errTLSAnswer] > 0 {
			hint = ": it speaks TLS, so its URL begins with https://"
		}
		return fmt.Errorf("%s answered every request with what HTTP/1.1 cannot read (%s)%s", target, strings.Join(parts, ", "), hint)
	}
	return fmt.Errorf("no request to %s got an answer (%s)", target, strings.Join(parts, ", "))
}

// CheckResources is CheckResources for users of the engine's library in
// this process, its pool shared or not.
func (e *Engine) CheckResources(users int) (*FilesWarning, error) {
	return CheckResources(users, e.lib.BytesPerUser(), e.cfg.sharedPool)
}

// Pacing is how the engine paces a session's requests.
func (e *Engine) Pacing() Pacing { return e.cfg.pacing }

// Unfilled lists the redacted values the engine's requests will send as
// placeholders: what neither its users nor the trace fill.
func (e *Engine) Unfilled() []Secret { return e.lib.Unfilled(e.cfg.users) }

// BytesPerUser is what a replayed user holds, with room: benchmark 3
// measured 14.5-15.4 KiB.
const BytesPerUser = 16 << 10

// CheckResources looks, before anything is allocated, at what users in
// this process need, each perUser bytes (Library.BytesPerUser): more
// memory than the machine has is an error, more open files than the
// process may hold (without a shared pool) a warning. Go raises the soft
// limit of open files to the hard one at start.
func CheckResources(users int, perUser int64, sharedPool bool) (warning *FilesWarning, err error) {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		total := uint64(si.Totalram) * uint64(si.Unit)
		if need := uint64(users) * uint64(perUser); need > total {
			return nil, &MemoryError{Users: users, Need: int64(need), PerUser: perUser, Total: int64(total)}
		}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, nil //nolint:nilerr // no figure to check against: let the run try
	}
	need := uint64(users) + 64 // a connection a user at least, and some to spare
	if sharedPool || need <= lim.Cur {
		return nil, nil
	}
	return &FilesWarning{Users: users, Need: need, Limit: lim.Cur}, nil
}

// A PortsError says that no connection to Target could be made for want
// of a local port (the ephemeral range is used up, much of it in
// TIME-WAIT): more source addresses, fewer users per process or a shared
// pool are the ways out.
type PortsError struct{ Target string }

func (e *PortsError) Error() string { return "out of local ports to " + e.Target }

// A MemoryError says that the users of a process need more memory than
// the machine has: PerUser each, Need in all, Total on the machine.
type MemoryError struct {
	Users                int
	Need, PerUser, Total int64
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("%d users in this process need about %s (%s each, with the largest answer a user keeps), and this machine has %s",
		e.Users, traces.FormatBytes(e.Need), traces.FormatBytes(e.PerUser), traces.FormatBytes(e.Total))
}

// A FilesWarning says that the users of a process, a connection each at
// least, need more open files (Need) than the process may hold (Limit).
type FilesWarning struct {
	Users       int
	Need, Limit uint64
}

func (w *FilesWarning) String() string {
	return fmt.Sprintf("%d users need at least %d open files, and this process may hold %d", w.Users, w.Need, w.Limit)
}
