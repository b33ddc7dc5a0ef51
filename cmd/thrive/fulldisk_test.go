//go:build linux

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/lockedio"
	"github.com/thrive-loadtest/thrive/report"
	"golang.org/x/sys/unix"
)

// smallDisk mounts a tmpfs of size at a new directory, or skips the test
// where the machine does not let it.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("no small tmpfs to fill here (%v)", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestReplayFullDisk: a replay whose --out is on a disk too full for its
// results is refused before its first request; one whose disk fills while
// it runs writes its results to the temporary directory and says where.
func TestReplayFullDisk(t *testing.T) {
	trace, _ := sampleTrace(t, 20)
	backend := serveInBackground(t, "--latency-scale", "0", "--rate-limit", "0")

	full := smallDisk(t, "64k")
	code, _, errOut := thrive(t, "replay", trace, "--target", backend, "--users", "2", "--run-time", "300ms", "--out", filepath.Join(full, "r.json"))
	if code != exitUsage || !strings.Contains(errOut, "no room for the results") {
		t.Fatalf("a full disk: exit %d, %s", code, errOut)
	}

	filling := smallDisk(t, "4m")
	out, tmp := filepath.Join(filling, "r.json"), t.TempDir()
	cmd := exec.CommandContext(context.Background(), thriveBin(), "replay", trace, "--target", backend, "--users", "2", "--run-time", "3s", "--scale-time", "0.01", "--out", out)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stdout, stderr lockedio.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The run has begun once its pre-flight is over: then the disk fills.
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stdout.String()+stderr.String(), "replaying") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // polling another process's output
	}
	f, err := os.Create(filepath.Join(filling, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	err = cmd.Wait()
	m := regexp.MustCompile(`the results are written to (\S+) instead`).FindStringSubmatch(stderr.String())
	if err == nil || m == nil || filepath.Dir(m[1]) != tmp {
		t.Fatalf("exit %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	res, rerr := report.ReadFile(m[1])
	if rerr != nil || res.Requests == 0 {
		t.Fatalf("the fallback result: %v", rerr)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("half a result left at %s: %v", out, err)
	}
}
