package traces_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// TestInspectSaysHowSessionsWereCut: a trace whose sessions say what
// placed their exchanges is inspected: the placements counted, the strays
// counted apart (not a session, not a profile), the continuing sessions,
// and per session its evidence with the requests placed by time alone,
// those sessions first.
func TestInspectSaysHowSessionsWereCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cut.thrv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := traces.NewWriter(f, traces.Meta{Source: "proxy"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	ex := func(url string, p traces.Placement) traces.Exchange {
		return traces.Exchange{Method: "GET", URL: url, Status: 200, Placed: p}
	}
	for _, s := range []*traces.Session{
		{ID: "a", Profile: "browse", Start: t0, Evidence: "cookie:csrftoken,sessionid connection",
			Exchanges: []traces.Exchange{ex("/admin/", traces.PlacedKey), ex("/static/base.css", traces.PlacedConnection)}},
		{ID: "b", Profile: "browse", Start: t0, Evidence: "cookie:sessionid window", Continues: true,
			Exchanges: []traces.Exchange{ex("/admin/", traces.PlacedKey), ex("/favicon.ico?v=2", traces.PlacedWindow)}},
		{ID: "c", Start: t0, Evidence: "address", Strays: true,
			Exchanges: []traces.Exchange{ex("/favicon.ico", traces.PlacedAnonymous), ex("/robots.txt", traces.PlacedAnonymous)}},
	} {
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	in, err := traces.InspectFile(path, 5)
	if err != nil {
		t.Fatal(err)
	}
	if in.Sessions != 2 || in.Profiles["browse"] != 2 || len(in.Profiles) != 1 || in.Strays != 2 || in.Continuing != 1 ||
		in.Placed["key"] != 2 || in.Placed["connection"] != 1 || in.Placed["window"] != 1 || in.Exchanges != 4 {
		t.Fatalf("inspection: %+v", in)
	}
	var out bytes.Buffer
	if err := in.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"strays      2", "continuing  1",
		"visits\n", "b  browse, 2 exchanges: cookie:sessionid window, continues\n", "weak: GET /favicon.ico (window)",
		"a  browse, 2 exchanges: cookie:csrftoken,sessionid connection",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "  b  ") > strings.Index(text, "  a  ") {
		t.Errorf("the session with a weak placement is not listed first:\n%s", text)
	}
}
