// Package hint carries advice on an error: what the user can do about it,
// in the words of the face they use (a command's flags, a page's fields).
// An engine returns a typed error that says what happened; the
// application layer, which knows how the user sets things, wraps it With
// the hint, and the face prints the error and then its hints.
//
// It follows k6's errext.WithHint: the hint is found along the error's
// chain, so that wrapping the error further (fmt.Errorf with %w) keeps it.
package hint

// A Hinter is an error that carries advice for the user.
type Hinter interface {
	error
	Hint() string
}

// With returns err with hint as its advice, or nil for a nil err. A hint
// already on err's chain stays: Of lists both, the outer first.
func With(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }
func (h *hinted) Hint() string  { return h.hint }

// Of returns the hints on err's chain, outermost first.
func Of(err error) []string {
	var hints []string
	for err != nil {
		if h, ok := err.(Hinter); ok && h.Hint() != "" { //nolint:errorlint // each link of the chain, not the first Hinter on it
			hints = append(hints, h.Hint())
		}
		switch u := err.(type) { //nolint:errorlint // the walk unwraps by hand
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			// errors.Join: the hints of each, in order.
			for _, e := range u.Unwrap() {
				hints = append(hints, Of(e)...)
			}
			return hints
		default:
			return hints
		}
	}
	return hints
}
