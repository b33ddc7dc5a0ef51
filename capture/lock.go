package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// One process writes a trace at a time. A capture, or a repair, holds an
// exclusive flock on PATH.lock (which names it: pid, what, since when) for
// as long as it writes PATH and its journal, as Prometheus locks its data
// directory: a second writer would write into a file the first replaces,
// or remove a journal the first still writes.

// LockSuffix is added to a trace's path to name its lock file.
const LockSuffix = ".lock"

// LockedError says a trace is being written by another process.
type LockedError struct {
	Path   string // the trace
	Holder string // what its lock file says of the holder: "pid 4242, thrive capture, since …"
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is being written by another process (%s): a second writer would destroy what both write; stop that one first, or write elsewhere", e.Path, e.Holder)
}

// traceLock is a held lock on a trace.
type traceLock struct {
	f    *os.File
	path string
}

// lockTrace takes the lock of the trace at path for this process, doing
// what, or returns a *LockedError naming the process that holds it.
func lockTrace(path, what string) (*traceLock, error) {
	lp := path + LockSuffix
	for range 10 {
		f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			holder, _ := io.ReadAll(f)
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &LockedError{Path: path, Holder: strings.TrimSpace(string(holder))}
			}
			return nil, fmt.Errorf("%s: %w", lp, err)
		}
		// The holder before may have removed the file between our open and
		// our lock: then the lock is on a file no one else will open.
		var opened, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &opened) != nil || unix.Stat(lp, &named) != nil || opened.Ino != named.Ino || opened.Dev != named.Dev {
			f.Close()
			continue
		}
		line := fmt.Sprintf("pid %d, thrive %s, since %s\n", os.Getpid(), what, time.Now().Format(time.DateTime))
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(line), 0)
		}
		return &traceLock{f: f, path: lp}, nil
	}
	return nil, fmt.Errorf("%s: its lock file keeps being replaced", lp)
}

// release gives the lock up: the file is removed while still held, so
// that whoever opens the path next makes a new one.
func (l *traceLock) release() {
	if l == nil {
		return
	}
	_ = os.Remove(l.path)
	_ = l.f.Close()
}

// checkUnlocked returns a *LockedError when another process holds the
// lock of the trace at path.
func checkUnlocked(path string) error {
	l, err := lockTrace(path, "check")
	if err != nil {
		return err
	}
	l.release()
	return nil
}
