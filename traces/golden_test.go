package traces_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/golden"
	"github.com/thrive-loadtest/thrive/traces"
)

// Golden-file tests of the text renderers: each renders a fixed input and
// holds the output, byte for byte, to testdata/<TestName>.golden. After a
// deliberate change, rewrite the file with
//
//	go test ./traces -run <TestName> -update

// checkGolden compares got with testdata/<test name>.golden, or rewrites
// that file with -update.
func checkGolden(t *testing.T, got []byte) {
	t.Helper()
	golden.Check(t, "./traces", got)
}

// TestGoldenInspectFull holds WriteText, what thrive traces inspect
// prints, to its layout for an inspection that has every part: origin,
// span, profiles, keys, hosts, status classes, bytes, truncated bodies,
// redactions, top endpoints, how the sessions were cut (more visits than
// are listed, some with requests placed by time alone, some continuing),
// strays, partial sessions and damage.
func TestGoldenInspectFull(t *testing.T) {
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	end := time.Date(2026, 12, 6, 17, 59, 48, 250_000_000, time.UTC)
	in := &traces.Inspection{
		File: "captures/shop-2026-12-06.thrv", FileBytes: 3_481_230, Version: traces.Version,
		Created: time.Date(2026, 12, 6, 8, 59, 57, 0, time.UTC), Source: "proxy", Target: "https://shop.example.test",
		Redacted: []string{"header:Authorization", "cookie:sessionid", "json:password"},
		Start:    start, End: end, SpanSeconds: end.Sub(start).Seconds(),
		Sessions: 22, Profiles: map[string]int{"browse": 13, "checkout": 7, "": 2},
		KeyedBy:   map[string]int{"cookie": 16, "authorization": 4, "address": 2},
		Hosts:     map[string]int{"https://shop.example.test": 1700, "https://cdn.example.test": 390},
		Exchanges: 2090, Errors: 6,
		StatusClasses: map[string]int{"2xx": 1890, "3xx": 120, "4xx": 60, "5xx": 14, "none": 6},
		WebSockets:    9, Frames: 1250, FramesSent: 410, FramesRecv: 840,
		RequestBytes: 412_300, ResponseBytes: 18_940_112, FrameBytes: 56_780, Truncated: 3,
		TopEndpoints: []traces.Count{
			{Name: "GET /api/products/{id}/", Count: 610}, {Name: "GET /static/{file}", Count: 390},
			{Name: "GET /api/search/", Count: 240}, {Name: "POST /api/cart/", Count: 180}, {Name: "POST /graphql Checkout", Count: 42},
		},
		Strays: 7, Continuing: 2, Partial: 1,
		Placed: map[string]int{"key": 1700, "connection": 150, "value": 30, "login": 16, "window": 3, "nearest": 1, "anonymous": 190},
		Damage: (&traces.FormatError{Part: "file", Offset: 3_481_230, Err: fmt.Errorf("%w: the file ends after a whole block but without its end record: its writer did not finish (still writing, or stopped)", traces.ErrTruncated)}).Error(),
	}
	for i := 1; i <= 22; i++ {
		v := traces.Visit{ID: fmt.Sprintf("s%02d", i), Exchanges: 95}
		switch {
		case i <= 13:
			v.Profile, v.Evidence = "browse", "cookie:csrftoken,sessionid connection"
		case i <= 17:
			v.Profile, v.Evidence = "checkout", "token value login"
		case i <= 20:
			v.Profile, v.Evidence = "checkout", "cookie:sessionid"
		default:
			v.Evidence = "address"
		}
		switch i {
		case 3, 9:
			v.Continues = true
		case 5:
			v.Evidence += " window"
			v.Weak = []string{"GET /favicon.ico (window)", "GET /static/app.js (window)"}
		case 12:
			v.Evidence += " nearest"
			v.Weak = []string{"GET /api/ping/ (nearest)"}
		case 17:
			v.Evidence += " window"
			v.Weak = []string{"GET /robots.txt (window)"}
		}
		in.Visits = append(in.Visits, v)
	}
	var b bytes.Buffer
	if err := in.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, b.Bytes())
}

// TestGoldenInspectBare holds WriteText to its layout for a trace that
// says little: no origin, no span, no cut (a synthetic trace, or one of a
// thrive before format version 3), one session of no profile.
func TestGoldenInspectBare(t *testing.T) {
	in := &traces.Inspection{
		File: "synth.thrv", FileBytes: 812, Version: 2, Redacted: []string{},
		Sessions: 1, Profiles: map[string]int{"": 1}, KeyedBy: map[string]int{"other": 1},
		Exchanges: 3, StatusClasses: map[string]int{"2xx": 3}, RequestBytes: 120, ResponseBytes: 2048,
		TopEndpoints: []traces.Count{{Name: "GET /", Count: 2}, {Name: "GET /about", Count: 1}},
		Placed:       map[string]int{"key": 3},
		Visits:       []traces.Visit{{ID: "1", Exchanges: 3}},
	}
	var b bytes.Buffer
	if err := in.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, b.Bytes())
}
