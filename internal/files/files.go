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
