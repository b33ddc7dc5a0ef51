package synth

import (
	"fmt"
	"time"

	"github.com/thrive-loadtest/thrive/internal/files"
	"github.com/thrive-loadtest/thrive/traces"
)

// WriteFile writes a trace of n sessions of the corpus of seed to path (as
// thrive traces sample does), synced to disk, and returns its size.
func WriteFile(path string, n int, seed uint64) (int64, error) {
	f, err := files.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w, err := traces.NewWriter(f, traces.Meta{Created: time.Now().UTC(), Source: "sample"})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	c := New(seed)
	for range n {
		if err := w.Write(c.Session()); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return w.Size(), nil
}
