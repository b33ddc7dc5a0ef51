package hint_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/thrive-loadtest/thrive/internal/hint"
)

func TestWith(t *testing.T) {
	if hint.With(nil, "x") != nil {
		t.Fatal("With(nil) is not nil")
	}
	base := errors.New("out of ports")
	err := fmt.Errorf("run: %w", hint.With(base, "use more source addresses"))
	if err.Error() != "run: out of ports" {
		t.Errorf("message %q: a hint is not part of it", err)
	}
	if !errors.Is(err, base) {
		t.Error("the hinted error is not on the chain")
	}
	outer := hint.With(err, "or fewer users")
	if got := hint.Of(outer); !slices.Equal(got, []string{"or fewer users", "use more source addresses"}) {
		t.Errorf("hints %q", got)
	}
	joined := errors.Join(hint.With(errors.New("a"), "ha"), errors.New("b"), hint.With(errors.New("c"), "hc"))
	if got := hint.Of(joined); !slices.Equal(got, []string{"ha", "hc"}) {
		t.Errorf("hints of a join %q", got)
	}
	if hint.Of(base) != nil || len(hint.Of(err)) != 1 {
		t.Error("an error without hints has some")
	}
}
