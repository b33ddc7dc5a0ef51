package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// TestTour runs a small tour: the trace holds the sessions driven, every
// replayed request was answered, and the report is written beside it.
func TestTour(t *testing.T) {
	var out, warn bytes.Buffer
	tr := Tour{Sessions: 6, TimeScale: 1000, Trace: filepath.Join(t.TempDir(), "t.thrv"), Users: 4, RunTime: time.Second, Out: &out, Warn: &warn}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), warn.String())
	}
	in, err := traces.InspectFile(tr.Trace, 5)
	if err != nil || in.Sessions != 6 {
		t.Fatalf("the trace: %+v, %v", in, err)
	}
	for _, want := range []string{"recorded 6 sessions", "replaying the trace as 4 users", "failures 0 (0.00%)", "HTML report written to " + tr.HTML} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if fi, err := os.Stat(tr.HTML); err != nil || fi.Size() == 0 || tr.HTML != strings.TrimSuffix(tr.Trace, ".thrv")+"-report.html" {
		t.Errorf("the report %s: %v", tr.HTML, err)
	}
}

func TestTourValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		tour Tour
	}{{"no time scale", Tour{Sessions: 1}}, {"negative sessions", Tour{Sessions: -1, TimeScale: 1}}} {
		if err := tc.tour.Validate(); err == nil || !strings.Contains(err.Error(), "want a positive scale and 0 or more sessions") {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
