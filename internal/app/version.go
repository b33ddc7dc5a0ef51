package app

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"

	"github.com/thrive-loadtest/thrive/traces"
)

// Version names the build of thrive that runs: its module version and
// revision, the Go that built it, and the trace format it writes.
func Version() string {
	version, revision := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = " " + s.Value
			}
		}
	}
	return fmt.Sprintf("thrive %s%s %s trace format %d", version, revision, runtime.Version(), traces.Version)
}

// StartCPUProfile starts writing a CPU profile to path, for the commands'
// hidden --cpuprofile flags; the returned function stops it and writes
// the allocations made meanwhile to path+".allocs" (go tool pprof
// -sample_index=alloc_space). An empty path does nothing.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if a, err := os.Create(path + ".allocs"); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(a, 0)
			a.Close()
		}
	}, nil
}
