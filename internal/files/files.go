// Package files reads the small files thrive's commands are given (rules,
// users, results) the one way: opened, parsed, closed, and the path named
// in a parse error.
package files

import (
	"fmt"
	"io"
	"os"
)

// Parse opens the file at path and reads it with parse. An error opening
// it names the path already (*fs.PathError); parse's is prefixed with it.
func Parse[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Private is the mode of the files thrive writes: a trace holds users'
// sessions even redacted, a result file the target's URLs and figures, so
// only their owner may read them (as dumpcap writes its captures).
const Private os.FileMode = 0o600

// Create creates the file at path, or truncates it, for writing, with the
// mode Private when it is new.
func Create(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, Private)
}
