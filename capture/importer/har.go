package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// Seen is one exchange as a file recorded it: when its request began, what
// tied it to a client, and the exchange itself, with Offset 0 and its
// WebSocket frames' and close's offsets from Start. The sessionizer that
// places it in a session makes the offsets relative to the session.
type Seen struct {
	// Start is when the request began (HAR's startedDateTime).
	Start time.Time
	// Conn is what ties exchanges to one client: the browser's connection
	// id where the file has one, else the page the request belonged to
	// (Page), else "".
	Conn string
	// Page is the page the request belonged to (HAR's pageref), "" if
	// none, whatever Conn holds: a sessionizer can tell a connection from a
	// page by comparing the two.
	Page string
	traces.Exchange
}

// HARStats counts what a HAR held and what was left out, and why: an import
// that left out most of a file should say so.
type HARStats struct {
	// Entries is the number of entries read whole, imported or left out.
	Entries int
	// Imported is the number of entries returned as exchanges, Unanswered
	// ones included.
	Imported int
	// FromCache is the number of entries left out because the browser
	// answered them from its cache (or a service worker's), so the server
	// never saw them.
	FromCache int
	// NotSent is the number of entries left out because the request never
	// left the browser: blocked by an extension or a policy, or aborted or
	// answered by a test's route (Playwright).
	NotSent int
	// NotHTTP is the number of entries left out because their URL is not
	// http(s) or ws(s): data:, blob:, chrome-extension: and the like.
	NotHTTP int
	// Unanswered is the number of imported exchanges that have no answer
	// (Status 0, with Error saying why): the request failed, or the file
	// was written before the answer came. The server may have seen them.
	Unanswered int
	// NoBody is the number of imported exchanges missing a request or
	// response body the file says there was: not saved (bodies left out
	// of the export, a binary request body), or kept in a file beside the
	// HAR.
	NoBody int
}

// ReadHAR reads a HAR 1.2 document from r and returns its entries as
// exchanges in order of start, with counts of what it held and left out.
// Entries are read one at a time from the log's entries array, so memory
// holds one entry besides the exchanges.
//
// A malformed or truncated document is an error that names name and where
// it went wrong, such as "session.har: entry 17: startedDateTime "x": ...",
// where entry 17 is log.entries[17]; the exchanges of the entries before it
// are returned with it.
func ReadHAR(r io.Reader, name string) ([]Seen, HARStats, error) {
	hr := &harReader{dec: json.NewDecoder(withoutBOM(r))}
	err := hr.document()
	slices.SortStableFunc(hr.out, func(a, b Seen) int { return a.Start.Compare(b.Start) })
	if err != nil {
		err = fmt.Errorf("%s: %w", name, err)
	}
	return hr.out, hr.stats, err
}

// withoutBOM returns r without a leading UTF-8 byte order mark, which some
// Windows tools write and encoding/json refuses.
func withoutBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xEF\xBB\xBF")) {
		_, _ = br.Discard(3)
	}
	return br
}

// harReader walks a HAR document token by token down to log.entries and
// decodes the entries one at a time, so that the entries before a broken
// one are kept.
type harReader struct {
	dec   *json.Decoder
	out   []Seen
	stats HARStats
}

// document reads the top-level object, whose log it reads, and makes sure
// nothing follows it.
func (hr *harReader) document() error {
	if err := hr.delim('{'); err != nil {
		return fmt.Errorf("not a HAR: %w", err)
	}
	found := false
	for hr.dec.More() {
		key, err := hr.key()
		if err != nil {
			return fmt.Errorf("document: %w", err)
		}
		if key != "log" {
			if err := hr.skip(); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			continue
		}
		if err := hr.log(); err != nil {
			return err
		}
		found = true
	}
	if err := hr.delim('}'); err != nil {
		return fmt.Errorf("document: %w", err)
	}
	if !found {
		return errors.New("not a HAR: no log")
	}
	if tok, err := hr.dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the document: %s", saw(tok, err))
	}
	return nil
}

// log reads the log object, whose entries it reads, skipping the rest
// (creator, pages and the like).
func (hr *harReader) log() error {
	if err := hr.delim('{'); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	found := false
	for hr.dec.More() {
		key, err := hr.key()
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		if key != "entries" {
			if err := hr.skip(); err != nil {
				return fmt.Errorf("log.%s: %w", key, err)
			}
			continue
		}
		if err := hr.entries(); err != nil {
			return err
		}
		found = true
	}
	if err := hr.delim('}'); err != nil {
		return fmt.Errorf("log, after its entries: %w", err)
	}
	if !found {
		return errors.New("log has no entries")
	}
	return nil
}

// entries reads the entries array, an entry at a time.
func (hr *harReader) entries() error {
	if err := hr.delim('['); err != nil {
		return fmt.Errorf("log.entries: %w", err)
	}
	for hr.dec.More() {
		i, at := hr.stats.Entries, hr.dec.InputOffset()
		var e harEntry
		if err := hr.dec.Decode(&e); err != nil {
			return decodeError(i, at, err)
		}
		if err := hr.add(&e); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		hr.stats.Entries++
	}
	if err := hr.delim(']'); err != nil {
		if hr.stats.Entries == 0 {
			return fmt.Errorf("log.entries: %w", err)
		}
		return fmt.Errorf("after entry %d: %w", hr.stats.Entries-1, err)
	}
	return nil
}

// add keeps entry e as an exchange, or counts why it leaves it out.
func (hr *harReader) add(e *harEntry) error {
	s, why, err := e.seen()
	if err != nil {
		return err
	}
	switch why {
	case fromCache:
		hr.stats.FromCache++
		return nil
	case notSent:
		hr.stats.NotSent++
		return nil
	case notHTTP:
		hr.stats.NotHTTP++
		return nil
	}
	hr.stats.Imported++
	if s.Status == 0 {
		hr.stats.Unanswered++
	}
	if s.noBody {
		hr.stats.NoBody++
	}
	hr.out = append(hr.out, s.Seen)
	return nil
}

// delim reads the next token, which must be want.
func (hr *harReader) delim(want json.Delim) error {
	tok, err := hr.dec.Token()
	if err != nil {
		return unexpectedEOF(err)
	}
	if d, ok := tok.(json.Delim); ok && d == want {
		return nil
	}
	return fmt.Errorf("%s where %q belongs", saw(tok, nil), rune(want))
}

// key reads an object's next key.
func (hr *harReader) key() (string, error) {
	tok, err := hr.dec.Token()
	if err != nil {
		return "", unexpectedEOF(err)
	}
	if k, ok := tok.(string); ok {
		return k, nil
	}
	return "", fmt.Errorf("%s where a key belongs", saw(tok, nil))
}

// skip reads past the next value, a token at a time, so that a large value
// the importer has no use for (pages, a tool's own fields) is never held
// whole.
func (hr *harReader) skip() error {
	depth := 0
	for {
		tok, err := hr.dec.Token()
		if err != nil {
			return unexpectedEOF(err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// saw says what the decoder found instead of what was expected: the
// token, or the error that stopped it.
func saw(tok json.Token, err error) string {
	if err != nil {
		return unexpectedEOF(err).Error()
	}
	if d, ok := tok.(json.Delim); ok {
		return fmt.Sprintf("%q", rune(d))
	}
	return fmt.Sprintf("%#v", tok)
}

// unexpectedEOF turns the end of the input inside the document into
// io.ErrUnexpectedEOF: for a HAR, the end of the file can only come after
// the document.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decodeError says what was wrong with entry i, from byte at of the file
// on, which the decoder refused, in the file's terms rather than the Go
// types': where the entry begins for a syntax error (the decoder does not
// say where in the file it is), or which field held what kind of value.
func decodeError(i int, at int64, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("entry %d (from byte %d): %w", i, at, err)
	case errors.As(err, &typ):
		what := "the entry"
		if typ.Field != "" {
			what = typ.Field
		}
		return fmt.Errorf("entry %d: %s: a JSON %s where %s belongs", i, what, typ.Value, kind(typ.Type))
	}
	return fmt.Errorf("entry %d: %w", i, unexpectedEOF(err))
}

// kind names the JSON kind of value a Go type decodes.
func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "an array"
	case reflect.Pointer:
		return kind(t.Elem())
	}
	return "an object"
}
