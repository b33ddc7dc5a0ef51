package report

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/thrive-loadtest/thrive/internal/files"
	"time"
)

// ReadFile reads the result file at path (Result.WriteFile).
func ReadFile(path string) (*Result, error) {
	return files.Parse(path, ReadResult)
}

// CompareFiles compares the result files base and cand (Compare), with
// noise, a second run of the baseline, when it is not "", and the JSON
// paths to ignore.
func CompareFiles(base, cand, noise string, maxRegression float64, ignore ...string) (*Comparison, error) {
	var rs [3]*Result
	for i, path := range []string{base, cand, noise} {
		if path == "" {
			continue
		}
		var err error
		if rs[i], err = ReadFile(path); err != nil {
			return nil, err
		}
	}
	return Compare(rs[0], rs[1], rs[2], maxRegression, ignore...)
}

// CompareSides compares the sides of the side-by-side run in the result
// file at path: its candidate with its base, its control as the noise.
func CompareSides(path string, maxRegression float64, ignore ...string) (*Comparison, error) {
	r, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	if r.Candidate == nil {
		return nil, fmt.Errorf("%s: not a side-by-side run (its candidate's result is not in it): give two result files", path)
	}
	base := *r
	base.Candidate, base.Control = nil, nil
	return Compare(&base, r.Candidate, r.Control, maxRegression, ignore...)
}

// WriteFile writes r as a result file at path.
func (r *Result) WriteFile(path string) error {
	return create(path, r.WriteJSON)
}

// Files are where a result goes when a run or a merge is over: its result
// file (JSON), Locust's four CSV files of a prefix, and the HTML report.
// Each left empty is not written.
type Files struct {
	JSON      string
	CSVPrefix string
	HTML      string
}

// Write writes res to each of the files, saying on w what it wrote.
func (fs Files) Write(w io.Writer, res *Result) error {
	if fs.JSON != "" {
		if err := res.WriteFile(fs.JSON); err != nil {
			// A long run is not lost to a full disk: its result goes to
			// the temporary directory, which is often another disk.
			fallback := filepath.Join(os.TempDir(), "thrive-result-"+time.Now().Format("20060102-150405.000")+".json")
			if ferr := res.WriteFile(fallback); ferr != nil {
				return errors.Join(err, ferr)
			}
			return fmt.Errorf("%w: the results are written to %s instead", err, fallback)
		}
		fmt.Fprintf(w, "results written to %s\n", fs.JSON)
	}
	if fs.CSVPrefix != "" {
		if err := WriteLocustCSV(fs.CSVPrefix, res); err != nil {
			return err
		}
		fmt.Fprintf(w, "Locust CSV files written to %s_*.csv\n", fs.CSVPrefix)
	}
	if fs.HTML != "" {
		if err := create(fs.HTML, func(f io.Writer) error { return WriteHTML(f, res) }); err != nil {
			return err
		}
		fmt.Fprintf(w, "HTML report written to %s\n", fs.HTML)
	}
	return nil
}

// Writable reports why a file at path could not be written, without
// writing it: its directory must take a new file, and it must not be a
// directory. A run checks its outputs so, before its first request: a bad
// path must not cost a whole run.
//
// A megabyte (writableSpace) is written and synced there too: a full disk
// takes an empty file, and would fail the result only at the end.
func Writable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return errors.New("it is a directory")
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".thrive-check-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = tmp.Write(make([]byte, writableSpace))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("no room for the results (%d bytes tried): %w", writableSpace, err)
	}
	return nil
}

// writableSpace is what Writable writes: more than most result files.
const writableSpace = 1 << 20

// create writes a file at path with write, and names path in the error of
// a write or of the close that flushes it.
func create(path string, write func(io.Writer) error) error {
	f, err := files.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		_ = os.Remove(path) // half a file would read as a broken one
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
