package traces

import (
	"errors"
	"fmt"
)

// Errors a Reader returns, wrapped in a *FormatError that says where.
var (
	// ErrNotTrace means the input does not start with a trace header.
	ErrNotTrace = errors.New("not a thrive trace (bad magic)")
	// ErrVersion means the file has a format version this thrive cannot read.
	ErrVersion = errors.New("unsupported trace format version")
	// ErrTruncated means the input ended inside a header or block.
	ErrTruncated = errors.New("truncated")
	// ErrCorrupt means a header or block failed its checksum or could not
	// be decoded.
	ErrCorrupt = errors.New("corrupt")
)

// FormatError reports where in a trace file reading stopped and why. Every
// session before Offset was read intact.
type FormatError struct {
	// Part names what was being read: "header" or "block".
	Part string
	// Offset is the byte offset of the header or block that failed.
	Offset int64
	// Err is one of ErrNotTrace, ErrVersion, ErrTruncated and ErrCorrupt,
	// possibly wrapping the cause.
	Err error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s at byte %d: %v", e.Part, e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }
