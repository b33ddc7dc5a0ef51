package traces

import (
	"errors"
	"io"
)

// Copy writes to dst every session of src for which keep returns true (every
// session when keep is nil) and returns how many it read and kept. When src
// stops at damage, what came before is written and Copy returns src's
// *FormatError; dst is not closed.
func Copy(dst *Writer, src *Reader, keep func(*Session) bool) (read, kept int, err error) {
	var s Session
	for {
		err := src.Next(&s)
		if errors.Is(err, io.EOF) {
			return read, kept, nil
		}
		if err != nil {
			return read, kept, err
		}
		read++
		if keep != nil && !keep(&s) {
			continue
		}
		if err := dst.Write(&s); err != nil {
			return read, kept, err
		}
		kept++
	}
}
