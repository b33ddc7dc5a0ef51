package importer

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// readTestdata reads testdata/name with ReadHAR.
func readTestdata(t *testing.T, name string) ([]Seen, HARStats, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ReadHAR(f, name)
}

// find returns the exchange of out with method, url and status, failing
// the test if there is none.
func find(t *testing.T, out []Seen, method, url string, status int) *Seen {
	t.Helper()
	for i := range out {
		if s := &out[i]; s.Method == method && s.URL == url && s.Status == status {
			return s
		}
	}
	t.Fatalf("no %s %s answered %d among %d exchanges", method, url, status, len(out))
	return nil
}

// headerOf returns the value of the first header of h named name, in any
// case, and whether there is one.
func headerOf(h []traces.Header, name string) (string, bool) {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// ms returns v milliseconds.
func ms(v float64) time.Duration { return time.Duration(math.Round(v * float64(time.Millisecond))) }

// near reports whether got is within a microsecond of want: a socket's
// message times are float seconds since the epoch, exact to a fraction of
// a microsecond.
func near(got, want time.Duration) bool { return (got - want).Abs() <= time.Microsecond }

// checkWhole checks what holds for every exchange ReadHAR returns: in order
// of start, at offset 0, no pseudo-headers, a time to first byte within the
// duration, and socket frames in order from the start.
func checkWhole(t *testing.T, out []Seen) {
	t.Helper()
	if !slices.IsSortedFunc(out, func(a, b Seen) int { return a.Start.Compare(b.Start) }) {
		t.Errorf("exchanges not in order of start")
	}
	for _, s := range out {
		if s.Offset != 0 || s.Think != 0 {
			t.Errorf("%s: offset %v, think %v, want 0", s.URL, s.Offset, s.Think)
		}
		for _, h := range append(slices.Clone(s.ReqHeader), s.RespHeader...) {
			if strings.HasPrefix(h.Name, ":") {
				t.Errorf("%s: pseudo-header %s kept", s.URL, h.Name)
			}
		}
		if s.TTFB < 0 || s.TTFB > s.Duration {
			t.Errorf("%s: TTFB %v, duration %v", s.URL, s.TTFB, s.Duration)
		}
		if ws := s.WebSocket; ws != nil {
			if !slices.IsSortedFunc(ws.Frames, func(a, b traces.Frame) int { return cmp.Compare(a.Offset, b.Offset) }) {
				t.Errorf("%s: frames out of order", s.URL)
			}
		}
	}
}

func TestReadHARChrome(t *testing.T) {
	out, st, err := readTestdata(t, "chrome.har")
	if err != nil {
		t.Fatal(err)
	}
	want := HARStats{Entries: 12, Imported: 7, FromCache: 3, NotSent: 1, NotHTTP: 1, Unanswered: 1, NoBody: 1}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	checkWhole(t, out)

	doc := find(t, out, "GET", "https://shop.example.com/", 200)
	if want := time.Date(2026, 5, 12, 9, 14, 3, 117e6, time.UTC); !doc.Start.Equal(want) {
		t.Errorf("start %v, want %v", doc.Start, want)
	}
	if doc.Host != "shop.example.com" || doc.Conn != "48213" || doc.Page != "page_1" {
		t.Errorf("host %q, conn %q, page %q: want the :authority, _connectionId and pageref", doc.Host, doc.Conn, doc.Page)
	}
	if doc.ReqHeader[0].Name != "accept" {
		t.Errorf("first request header %q, want accept (after the pseudo-headers)", doc.ReqHeader[0].Name)
	}
	if v, _ := headerOf(doc.ReqHeader, "cookie"); v != "sessionid=k2j3h4l5m6; csrftoken=Zx81Qp" {
		t.Errorf("cookie %q", v)
	}
	if doc.TTFB != ms(184.2) || doc.Duration != ms(212.4) {
		t.Errorf("TTFB %v, duration %v; want 184.2ms (blocked+dns+connect+send+wait, not ssl) and 212.4ms", doc.TTFB, doc.Duration)
	}
	if !bytes.HasPrefix(doc.RespBody.Data, []byte("<!doctype html>")) {
		t.Errorf("body %q", doc.RespBody.Data)
	}
	if v, ok := headerOf(doc.RespHeader, "content-encoding"); ok {
		t.Errorf("content-encoding %q kept on a body HAR holds decoded", v)
	}
	if v, _ := headerOf(doc.RespHeader, "content-length"); v != "164" || len(doc.RespBody.Data) != 164 {
		t.Errorf("content-length %q for a body of %d bytes", v, len(doc.RespBody.Data))
	}

	if logo := find(t, out, "GET", "https://shop.example.com/static/logo.png", 200); !bytes.HasPrefix(logo.RespBody.Data, []byte("\x89PNG\r\n")) {
		t.Errorf("logo %q: not decoded from base64", logo.RespBody.Data)
	}
	if js := find(t, out, "GET", "https://shop.example.com/static/app.js", 200); js.RespBody.Len() != 0 {
		t.Errorf("app.js has a body of %d bytes, the HAR none", js.RespBody.Len())
	}
	cart := find(t, out, "POST", "https://shop.example.com/api/cart", 201)
	if string(cart.ReqBody.Data) != `{"sku":"A-113","qty":2}` || cart.TTFB != ms(42.5) || cart.Duration != ms(43.4) {
		t.Errorf("cart: body %q, TTFB %v, duration %v", cart.ReqBody.Data, cart.TTFB, cart.Duration)
	}
	if orders := find(t, out, "GET", "https://shop.example.com/account/orders", 304); orders.RespBody.Len() != 0 {
		t.Errorf("304 with the cached body %q", orders.RespBody.Data)
	}
	failed := find(t, out, "GET", "https://api.example.net/v1/recommendations?sku=A-113", 0)
	if failed.Error != "net::ERR_CONNECTION_RESET" || failed.TTFB != 0 || failed.Duration != ms(1503.2) {
		t.Errorf("failed: error %q, TTFB %v, duration %v", failed.Error, failed.TTFB, failed.Duration)
	}
	if failed.Host != "api.example.net" || failed.Conn != "page_1" {
		t.Errorf("failed: host %q, conn %q; want the URL's host and the pageref", failed.Host, failed.Conn)
	}

	ws := find(t, out, "GET", "https://shop.example.com/live", 101)
	if ws.WebSocket == nil {
		t.Fatal("no WebSocket on the 101")
	}
	wantFrames := []struct {
		at         time.Duration
		fromClient bool
		op         traces.Opcode
		payload    string
	}{
		{ms(350), true, traces.OpText, `{"op":"subscribe","room":"cart"}`},
		{ms(412), false, traces.OpText, `{"op":"welcome"}`},
		{ms(1250), true, traces.OpBinary, "\x01\x02\xff"},
		{ms(2500), false, traces.OpText, `{"op":"price","sku":"A-113","cents":1999}`},
	}
	if len(ws.WebSocket.Frames) != len(wantFrames) {
		t.Fatalf("%d frames, want %d", len(ws.WebSocket.Frames), len(wantFrames))
	}
	for i, w := range wantFrames {
		f := ws.WebSocket.Frames[i]
		if !near(f.Offset, w.at) || f.FromClient != w.fromClient || f.Opcode != w.op || string(f.Payload.Data) != w.payload {
			t.Errorf("frame %d: %v client=%v %v %q, want %v client=%v %v %q", i, f.Offset, f.FromClient, f.Opcode, f.Payload.Data, w.at, w.fromClient, w.op, w.payload)
		}
	}
	if !near(ws.TTFB, ms(350)) || ws.Duration != ms(2500.3) || ws.WebSocket.Close != (traces.Close{Offset: ms(2500.3)}) {
		t.Errorf("socket: TTFB %v (want its first message's 350ms), duration %v, close %+v", ws.TTFB, ws.Duration, ws.WebSocket.Close)
	}
	if ws.Conn != "48220" || ws.Host != "shop.example.com" {
		t.Errorf("socket: conn %q, host %q", ws.Conn, ws.Host)
	}
}

func TestReadHARFirefox(t *testing.T) {
	out, st, err := readTestdata(t, "firefox.har")
	if err != nil {
		t.Fatal(err)
	}
	want := HARStats{Entries: 8, Imported: 7, FromCache: 1, Unanswered: 1, NoBody: 1}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	checkWhole(t, out)

	page := find(t, out, "GET", "https://shop.example.com/checkout", 200)
	if want := time.Date(2026, 5, 12, 9, 20, 1, 302e6, time.UTC); !page.Start.Equal(want) {
		t.Errorf("start %v, want %v (11:20:01.302+02:00)", page.Start, want)
	}
	if page.Conn != "page_1" {
		t.Errorf("conn %q: want the pageref, connection being the server's port", page.Conn)
	}
	if page.TTFB != ms(133) || page.Duration != ms(170) {
		t.Errorf("TTFB %v, duration %v; want 133ms and 170ms", page.TTFB, page.Duration)
	}
	if _, ok := headerOf(page.RespHeader, "Content-Encoding"); ok {
		t.Errorf("Content-Encoding kept")
	}
	if v, _ := headerOf(page.RespHeader, "Content-Length"); v != "139" || len(page.RespBody.Data) != 139 {
		t.Errorf("Content-Length %q for a body of %d bytes", v, len(page.RespBody.Data))
	}
	form := find(t, out, "POST", "https://shop.example.com/checkout/address", 302)
	if string(form.ReqBody.Data) != "csrfmiddlewaretoken=Qm4&street=1+Main+St" {
		t.Errorf("form body %q", form.ReqBody.Data)
	}
	if pay := find(t, out, "GET", "https://shop.example.com/checkout/payment", 200); pay.RespBody.Len() != 0 {
		t.Errorf("a body the HAR left out: %q", pay.RespBody.Data)
	}
	find(t, out, "GET", "https://shop.example.com/checkout/payment", 304)
	card := find(t, out, "GET", "https://cdn.example.org/img/card-visa.png", 200)
	if !bytes.HasPrefix(card.RespBody.Data, []byte("\x89PNG")) || card.Host != "cdn.example.org" {
		t.Errorf("card: host %q, body %q", card.Host, card.RespBody.Data)
	}
	ws := find(t, out, "GET", "https://shop.example.com/live", 101)
	if ws.WebSocket == nil || len(ws.WebSocket.Frames) != 0 || ws.WebSocket.Close.Offset != ms(29) || ws.Duration != ms(29) {
		t.Errorf("socket without messages: %+v, duration %v", ws.WebSocket, ws.Duration)
	}
	slow := find(t, out, "GET", "https://shop.example.com/api/slow", 0)
	if slow.Error != "no answer in the HAR" || slow.Conn != "page_1" {
		t.Errorf("aborted: error %q, conn %q", slow.Error, slow.Conn)
	}
}

func TestReadHARPlaywright(t *testing.T) {
	out, st, err := readTestdata(t, "playwright.har")
	if err != nil {
		t.Fatal(err)
	}
	want := HARStats{Entries: 7, Imported: 6, NotSent: 1, Unanswered: 1}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	checkWhole(t, out)
	var order []string
	for _, s := range out {
		order = append(order, s.Method+" "+s.URL)
	}
	wantOrder := []string{
		"GET https://app.example.com/login",
		"GET https://app.example.com/static/logo.webp",
		"POST https://app.example.com/login",
		"GET https://app.example.com/dashboard",
		"GET https://app.example.com/socket",
		"GET https://telemetry.example.com/collect?e=view",
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("order\n%q\nwant\n%q", order, wantOrder)
	}

	const page = "page@5b8c1a7ee2c4e0b3d24f52ba3d7e8f12"
	login := find(t, out, "GET", "https://app.example.com/login", 200)
	if login.Host != "app.example.com" || login.Conn != page || login.Page != page {
		t.Errorf("host %q, conn %q, page %q", login.Host, login.Conn, login.Page)
	}
	if login.TTFB != ms(64.6) || login.Duration != ms(88.721) {
		t.Errorf("TTFB %v, duration %v; want 64.6ms (dns+connect+wait) and 88.721ms", login.TTFB, login.Duration)
	}
	if logo := find(t, out, "GET", "https://app.example.com/static/logo.webp", 200); !bytes.HasPrefix(logo.RespBody.Data, []byte("RIFF")) {
		t.Errorf("logo %q: not decoded from base64", logo.RespBody.Data)
	}
	post := find(t, out, "POST", "https://app.example.com/login", 302)
	if string(post.ReqBody.Data) != "email=ann%40example.com&password=s3cret+pass" {
		t.Errorf("login body %q", post.ReqBody.Data)
	}

	ws := find(t, out, "GET", "https://app.example.com/socket", 101)
	if ws.WebSocket == nil || len(ws.WebSocket.Frames) != 3 {
		t.Fatalf("socket %+v", ws.WebSocket)
	}
	for i, at := range []time.Duration{ms(250.4), ms(310), ms(1450.75)} {
		if f := ws.WebSocket.Frames[i]; !near(f.Offset, at) {
			t.Errorf("frame %d at %v, want %v (its time is in milliseconds)", i, f.Offset, at)
		}
	}
	if f := ws.WebSocket.Frames[2]; f.Opcode != traces.OpBinary || string(f.Payload.Data) != "\x00\x10hello" || f.FromClient {
		t.Errorf("binary frame %+v", f)
	}
	if !near(ws.Duration, ms(1450.75)) || ws.TTFB != 0 {
		t.Errorf("socket: duration %v (want its last message's), TTFB %v", ws.Duration, ws.TTFB)
	}
	failed := find(t, out, "GET", "https://telemetry.example.com/collect?e=view", 0)
	if failed.Error != "net::ERR_NAME_NOT_RESOLVED" || failed.Duration != ms(12.5) {
		t.Errorf("failed: error %q, duration %v", failed.Error, failed.Duration)
	}
}

func TestReadHARPlaywrightAttached(t *testing.T) {
	out, st, err := readTestdata(t, "playwright-attach.har")
	if err != nil {
		t.Fatal(err)
	}
	want := HARStats{Entries: 3, Imported: 3, NoBody: 2}
	if st != want {
		t.Errorf("stats %+v, want %+v (the page's body and the upload's are in files beside the HAR)", st, want)
	}
	post := find(t, out, "POST", "https://app.example.com/login", 302)
	if string(post.ReqBody.Data) != "email=ann%40example.com&password=s3cret+pass" {
		t.Errorf("form body %q, want it made from its params", post.ReqBody.Data)
	}
}

func TestReadHARTruncated(t *testing.T) {
	out, st, err := readTestdata(t, "truncated.har")
	if err == nil || err.Error() != "truncated.har: entry 6: unexpected EOF" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error %v, want truncated.har: entry 6: unexpected EOF", err)
	}
	if len(out) != 3 || st.Entries != 6 {
		t.Errorf("%d exchanges of %d entries, want the 3 imported of the 6 before the cut", len(out), st.Entries)
	}
}

// TestReadHARCutAnywhere cuts a file at many places: every cut is an error
// naming the file, and returns the exchanges of the entries before it.
func TestReadHARCutAnywhere(t *testing.T) {
	whole, err := os.ReadFile(filepath.Join("testdata", "chrome.har"))
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := ReadHAR(bytes.NewReader(whole), "chrome.har")
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(whole)-1; n += 97 {
		out, _, err := ReadHAR(bytes.NewReader(whole[:n]), "chrome.har")
		if err == nil || !strings.HasPrefix(err.Error(), "chrome.har: ") {
			t.Fatalf("cut at %d: error %v", n, err)
		}
		if len(out) > len(all) {
			t.Fatalf("cut at %d: %d exchanges of %d", n, len(out), len(all))
		}
		for i := range out {
			if out[i].URL != all[i].URL {
				t.Fatalf("cut at %d: exchange %d is %s, want %s", n, i, out[i].URL, all[i].URL)
			}
		}
	}
}

func TestReadHARMalformed(t *testing.T) {
	out, st, err := readTestdata(t, "malformed.har")
	if err == nil || !strings.HasPrefix(err.Error(), `malformed.har: entry 2: startedDateTime "yesterday at noon": `) {
		t.Errorf("error %v", err)
	}
	if len(out) != 2 || st.Entries != 2 || st.Imported != 2 {
		t.Errorf("%d exchanges, stats %+v: want the 2 entries before the broken one", len(out), st)
	}
}

// entryJSON is an entry that imports as it is, for the cases that change
// one of its fields.
const entryJSON = `{"startedDateTime": "2026-05-12T09:14:03.117Z", "time": 20,
 "request": {"method": "GET", "url": "https://shop.example.com/", "headers": [{"name": "Host", "value": "shop.example.com"}]},
 "response": {"status": 200, "headers": [], "content": {"size": 5, "text": "hello"}},
 "timings": {"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": 15, "receive": 5}}`

// harOf returns a HAR document of a good entry followed by entries.
func harOf(entries ...string) string {
	return `{"log": {"version": "1.2", "entries": [` + strings.Join(append([]string{entryJSON}, entries...), ",") + `]}}`
}

// socketWith returns entryJSON as a 101 with fields added.
func socketWith(fields string) string {
	return strings.Replace(changed(`"status": 200`, `"status": 101`), `"time": 20,`, `"time": 20, `+fields, 1)
}

// changed returns entryJSON with old replaced by new.
func changed(old, new string) string {
	if !strings.Contains(entryJSON, old) {
		panic("entryJSON has no " + old)
	}
	return strings.Replace(entryJSON, old, new, 1)
}

func TestReadHARErrors(t *testing.T) {
	for _, c := range []struct {
		name, doc, err string
		kept           int
	}{
		{"status a string", harOf(changed(`"status": 200`, `"status": "200"`)), "x.har: entry 1: response.status: a JSON string where a number belongs", 1},
		{"entry not an object", harOf(`"entry"`), "x.har: entry 1: the entry: a JSON string where an object belongs", 1},
		{"syntax", harOf(changed(`"time": 20,`, `"time": 20`)), "x.har: entry 1 (from byte ", 1},
		{"bad base64", harOf(changed(`"text": "hello"`, `"text": "he!lo", "encoding": "base64"`)), "x.har: entry 1: response.content.text: illegal base64 data", 1},
		{"unknown encoding", harOf(changed(`"text": "hello"`, `"text": "hello", "encoding": "gzip"`)), `x.har: entry 1: response.content.encoding "gzip": not base64`, 1},
		{"no method", harOf(changed(`"method": "GET"`, `"method": ""`)), "x.har: entry 1: request.method: missing", 1},
		{"no url", harOf(changed(`"url": "https://shop.example.com/"`, `"url": ""`)), "x.har: entry 1: request.url: missing", 1},
		{"no host", harOf(changed(`"url": "https://shop.example.com/"`, `"url": "https:///x"`)), `x.har: entry 1: request.url "https:///x": no host`, 1},
		{"bad url", harOf(changed(`"url": "https://shop.example.com/"`, `"url": "https://shop example.com/"`)), "x.har: entry 1: request.url: parse ", 1},
		{"no start", harOf(changed(`"startedDateTime": "2026-05-12T09:14:03.117Z"`, `"startedDateTime": ""`)), "x.har: entry 1: startedDateTime: missing", 1},
		{"start without zone", harOf(changed(`03.117Z"`, `03.117"`)), `x.har: entry 1: startedDateTime "2026-05-12T09:14:03.117": not a date and time with a zone`, 1},
		{"timing out of range", harOf(changed(`"wait": 15`, `"wait": 1e15`)), "x.har: entry 1: timings.wait 1e+15: out of range", 1},
		{"time out of range", harOf(changed(`"time": 20`, `"time": 2e12`)), "x.har: entry 1: time 2e+12: out of range", 1},
		{"bad opcode", harOf(socketWith(`"_webSocketMessages": [{"type": "send", "time": 1778577244.35, "opcode": 99, "data": "x"}],`)),
			"x.har: entry 1: _webSocketMessages[0]: opcode 99: not a WebSocket opcode", 1},
		{"message time", harOf(socketWith(`"_webSocketMessages": [{"type": "send", "time": 1e20, "opcode": 1, "data": "x"}],`)),
			"x.har: entry 1: _webSocketMessages[0]: time 1e+20: out of range", 1},
		{"binary message", harOf(socketWith(`"_webSocketMessages": [{"type": "receive", "time": 1778577244.35, "opcode": 2, "data": "%%"}],`)),
			"x.har: entry 1: _webSocketMessages[0]: data of opcode 2: illegal base64 data", 1},
		{"cut in an entry", harOf()[:200], "x.har: entry 0: unexpected EOF", 0},
		{"cut after an entry", harOf()[:len(harOf())-3], "x.har: after entry 0: unexpected EOF", 1},
		{"cut after the entries", harOf()[:len(harOf())-2], "x.har: log, after its entries: unexpected EOF", 1},
		{"entries not an array", `{"log": {"entries": {}}}`, `x.har: log.entries: '{' where '[' belongs`, 0},
		{"no entries", `{"log": {"version": "1.2"}}`, "x.har: log has no entries", 0},
		{"no log", `{"version": "1.2"}`, "x.har: not a HAR: no log", 0},
		{"not an object", `[]`, `x.har: not a HAR: '[' where '{' belongs`, 0},
		{"empty", ``, "x.har: not a HAR: unexpected EOF", 0},
		{"after the document", harOf() + ` {}`, `x.har: after the document: '{'`, 1},
		{"cut in pages", `{"log": {"entries": [], "pages": [{"id": "p`, "x.har: log.pages: unexpected EOF", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := ReadHAR(strings.NewReader(c.doc), "x.har")
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)):
				t.Errorf("error %v, want %s...", err, c.err)
			}
			if len(out) != c.kept {
				t.Errorf("%d exchanges, want %d", len(out), c.kept)
			}
		})
	}
}

// readOne reads doc, which must hold one importable entry, and returns it.
func readOne(t *testing.T, doc string) Seen {
	t.Helper()
	out, _, err := ReadHAR(strings.NewReader(doc), "x.har")
	if err != nil || len(out) != 2 {
		t.Fatalf("%d exchanges, error %v", len(out), err)
	}
	return out[1]
}

func TestReadHARStartedDateTime(t *testing.T) {
	want := time.Date(2026, 5, 12, 9, 14, 3, 117e6, time.UTC)
	for _, s := range []string{
		"2026-05-12T09:14:03.117Z",               // Chrome, Playwright
		"2026-05-12T11:14:03.117+02:00",          // Firefox
		"2026-05-12T04:14:03.117-05:00",          // Firefox, west of Greenwich
		"2026-05-12T11:14:03.117+0200",           // an offset without its colon
		"2026-05-12T09:14:03.1170000+00:00",      // seven fractional digits
		"2026-05-12T09:14:03.117000000000+00:00", // more than nanoseconds
	} {
		doc := harOf(changed(`"2026-05-12T09:14:03.117Z"`, `"`+s+`"`))
		out, _, err := ReadHAR(strings.NewReader(doc), "x.har")
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if !out[1].Start.Equal(want) {
			t.Errorf("%s read as %v", s, out[1].Start)
		}
	}
}

func TestReadHARQuirks(t *testing.T) {
	t.Run("byte order mark", func(t *testing.T) {
		if _, _, err := ReadHAR(strings.NewReader("\xEF\xBB\xBF"+harOf()), "x.har"); err != nil {
			t.Error(err)
		}
	})
	t.Run("lines of a header", func(t *testing.T) {
		s := readOne(t, harOf(changed(`"headers": [], "content"`, `"headers": [{"name": "Set-Cookie", "value": "a=1\nb=2"}], "content"`)))
		want := []traces.Header{{Name: "Set-Cookie", Value: "a=1"}, {Name: "Set-Cookie", Value: "b=2"}}
		if !slices.Equal(s.RespHeader, want) {
			t.Errorf("headers %+v, want %+v", s.RespHeader, want)
		}
	})
	t.Run("connection id of an older Chrome", func(t *testing.T) {
		if s := readOne(t, harOf(changed(`"time": 20,`, `"time": 20, "connection": "3124", "pageref": "page_2",`))); s.Conn != "3124" || s.Page != "page_2" {
			t.Errorf("conn %q, page %q", s.Conn, s.Page)
		}
		if s := readOne(t, harOf(changed(`"time": 20,`, `"time": 20, "connection": "443", "pageref": "page_2",`))); s.Conn != "page_2" {
			t.Errorf("conn %q: the server's port is no connection", s.Conn)
		}
		if s := readOne(t, harOf(changed(`"time": 20,`, `"time": 20, "connection": 8443, "_connectionId": "77",`))); s.Conn != "77" {
			t.Errorf("conn %q", s.Conn)
		}
	})
	t.Run("time missing", func(t *testing.T) {
		s := readOne(t, harOf(changed(`"time": 20,`, ``)))
		if s.TTFB != ms(15) || s.Duration != ms(20) {
			t.Errorf("TTFB %v, duration %v: want the sums of the timings", s.TTFB, s.Duration)
		}
		s = readOne(t, harOf(changed(`"time": 20,`, `"time": -1,`)))
		if s.Duration != ms(20) {
			t.Errorf("duration %v for time -1", s.Duration)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		if s := readOne(t, harOf(changed(`"method": "GET"`, `"method": "HEAD"`))); s.RespBody.Len() != 0 {
			t.Errorf("HEAD answered with a body %q", s.RespBody.Data)
		}
	})
	t.Run("socket", func(t *testing.T) {
		s := readOne(t, harOf(changed(`"status": 200`, `"status": 101`)))
		if s.WebSocket == nil || s.WebSocket.Close.Offset != ms(20) {
			t.Fatalf("socket %+v", s.WebSocket)
		}
		msgs := `"_webSocketMessages": [
			{"type": "send", "time": 1778577243.217, "opcode": 1, "data": "hi"},
			{"type": "receive", "time": -1, "opcode": 1, "data": "no time"},
			{"type": "error", "time": 1778577243.3, "opcode": -1, "data": "Invalid frame header"},
			{"type": "pong", "time": 1778577243.3, "opcode": 10, "data": ""},
			{"type": "receive", "time": 1778577243.4, "opcode": 9, "data": "cGluZw=="},
			{"type": "send", "time": 1778577243.617, "opcode": 8, "data": "A+hieWU"},
			{"type": "send", "time": 1778577243.7, "opcode": 8, "data": "A+g"}],`
		s = readOne(t, harOf(strings.Replace(changed(`"time": 20,`, `"time": 20, `+msgs), `"status": 200`, `"status": 0`, 1)))
		ws := s.WebSocket
		if s.Status != 101 || ws == nil || len(ws.Frames) != 3 {
			t.Fatalf("status %d, socket %+v: messages make it a socket", s.Status, ws)
		}
		if !near(ws.Frames[1].Offset, ws.Frames[0].Offset) || !near(ws.Frames[0].Offset, ms(100)) {
			t.Errorf("a message without a time at %v, want with the one before, at %v", ws.Frames[1].Offset, ws.Frames[0].Offset)
		}
		if f := ws.Frames[2]; f.Opcode != traces.OpPing || string(f.Payload.Data) != "ping" {
			t.Errorf("ping %+v", f)
		}
		if c := ws.Close; c.Code != 1000 || c.Reason != "bye" || !c.ByClient || !near(c.Offset, ms(500)) {
			t.Errorf("close %+v, want the first close message's", c)
		}
		if s.Duration != ms(500) || s.Error != "Invalid frame header" {
			t.Errorf("duration %v, error %q", s.Duration, s.Error)
		}
	})
}

func TestReadHARLeftOut(t *testing.T) {
	for _, c := range []struct {
		name, entry string
		want        HARStats
	}{
		{"Chrome's cache", changed(`"time": 20,`, `"time": 20, "_fromCache": "disk",`), HARStats{FromCache: 1}},
		{"a service worker's cache", changed(`"status": 200`, `"status": 200, "_fetchedViaServiceWorker": true, "_serviceWorkerResponseSource": "http-cache"`), HARStats{FromCache: 1}},
		{"a service worker's fetch", changed(`"status": 200`, `"status": 200, "_fetchedViaServiceWorker": true, "_serviceWorkerResponseSource": "network"`), HARStats{Imported: 1}},
		{"Firefox's cache", changed(`"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": 15, "receive": 5`, `"blocked": 0, "dns": 0, "connect": 0, "ssl": 0, "send": 0, "wait": 0, "receive": 0`), HARStats{FromCache: 1}},
		{"fast, not cached", changed(`"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": 15, "receive": 5`, `"blocked": 0, "dns": 0, "connect": 0, "ssl": -1, "send": 0, "wait": 0, "receive": 0`), HARStats{Imported: 1}},
		{"blocked by an extension", changed(`"status": 200`, `"status": 0, "_error": "net::ERR_BLOCKED_BY_CLIENT"`), HARStats{NotSent: 1}},
		{"aborted by a route", changed(`"time": 20,`, `"time": 20, "_wasAborted": true,`), HARStats{NotSent: 1}},
		{"continued by a route", changed(`"time": 20,`, `"time": 20, "_wasContinued": true,`), HARStats{Imported: 1}},
		{"blob", changed(`"https://shop.example.com/"`, `"blob:https://shop.example.com/0f4c"`), HARStats{NotHTTP: 1}},
		{"extension", changed(`"https://shop.example.com/"`, `"chrome-extension://abcdef/inject.js"`), HARStats{NotHTTP: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, st, err := ReadHAR(strings.NewReader(harOf(c.entry)), "x.har")
			if err != nil {
				t.Fatal(err)
			}
			c.want.Entries, c.want.Imported = 2, c.want.Imported+1
			if st != c.want {
				t.Errorf("stats %+v, want %+v", st, c.want)
			}
		})
	}
}

func TestReadHAREmpty(t *testing.T) {
	out, st, err := ReadHAR(strings.NewReader(`{"log": {"version": "1.2", "entries": [], "pages": [{"id": "page_1", "x": [1, {"y": null}]}]}, "z": 1}`), "x.har")
	if err != nil || len(out) != 0 || st != (HARStats{}) {
		t.Errorf("%d exchanges, stats %+v, error %v", len(out), st, err)
	}
}

// TestReadHARSocketURL: a WebSocket's entry, which Chrome's DevTools
// writes with its ws or wss URL, is the HTTP request of its handshake, as
// the capture records it, so that a replay sees the page and its sockets
// as one origin.
func TestReadHARSocketURL(t *testing.T) {
	for _, tc := range []struct{ name, url, want string }{
		{"ws", "ws://127.0.0.1:8080/ws/chat/?room=1", "http://127.0.0.1:8080/ws/chat/?room=1"},
		{"wss", "wss://chat.example.com/live#x", "https://chat.example.com/live"},
		{"upper case", "WSS://chat.example.com/live", "https://chat.example.com/live"},
		{"http stays", "http://127.0.0.1:8080/ws/chat/", "http://127.0.0.1:8080/ws/chat/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"log":{"entries":[{"startedDateTime":"2026-05-12T09:14:03.117Z","time":5,"_resourceType":"websocket",
				"request":{"method":"GET","url":"` + tc.url + `","headers":[]},"response":{"status":101,"headers":[],"content":{"size":0}},
				"timings":{"send":1,"wait":4,"receive":0},"_webSocketMessages":[{"type":"send","time":1778577243.2,"opcode":1,"data":"hi"}]}]}}`
			out, _, err := ReadHAR(strings.NewReader(doc), "socket.har")
			if err != nil || len(out) != 1 {
				t.Fatalf("%d exchanges, %v", len(out), err)
			}
			if out[0].URL != tc.want || out[0].WebSocket == nil || len(out[0].WebSocket.Frames) != 1 {
				t.Errorf("URL %q, socket %+v; want %q with its message", out[0].URL, out[0].WebSocket, tc.want)
			}
		})
	}
}
