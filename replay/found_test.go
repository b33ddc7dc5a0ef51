package replay

import (
	"slices"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

// TestCorrelateFoundByBoundary: values an answer gave in no shape the
// known places read (a Socket.IO handshake's prefixed JSON, a token set by
// a script, JSON held in an HTML attribute with its quotes as entities)
// are carried to the requests that send them, found again in live answers
// by the text before them; tokens the client made first (a cache buster,
// a value the server only echoed) are not.
func TestCorrelateFoundByBoundary(t *testing.T) {
	page := func(csrf, state string) string {
		return `<html><head><script>window.App = { csrf: "` + csrf + `" };</script></head>` +
			`<body><div id="app" data-page="{&quot;props&quot;:{&quot;team&quot;:&quot;` + state + `&quot;}}"></div></body></html>`
	}
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("GET", "/chat", "", page("rec9Tok3nAbCdEf", "team-7f3a9c21")),
		exch("GET", "/socket.io/?EIO=4&transport=polling&t=PqW8x2Lk", "", `0{"sid":"lRk9x_3A2bQ7yTzUAAAB","upgrades":["websocket"],"pingInterval":25000}`),
		exch("POST", "/socket.io/?EIO=4&transport=polling&sid=lRk9x_3A2bQ7yTzUAAAB", `40{"token":"rec9Tok3nAbCdEf"}`, "ok"),
		exch("GET", "/api/teams/team-7f3a9c21/echo?nonce=cl1entM4de99", "", `{"nonce":"cl1entM4de99"}`),
		exch("GET", "/socket.io/?EIO=4&transport=websocket&sid=lRk9x_3A2bQ7yTzUAAAB&n=cl1entM4de99", "", ""),
	}}
	vars, uses := correlate(s, nil)
	live := map[int][]byte{
		0: []byte(page("liveT0ken77xyz", "team-0b0b0b0b")),
		1: []byte(`0{"sid":"Zz_live-sid-1234567","upgrades":["websocket"],"pingInterval":25000}`),
	}
	want := map[string]string{"rec9Tok3nAbCdEf": "liveT0ken77xyz", "team-7f3a9c21": "team-0b0b0b0b", "lRk9x_3A2bQ7yTzUAAAB": "Zz_live-sid-1234567"}
	got := map[string]bool{}
	for _, v := range vars {
		if strings.Contains(v.recorded, "cl1entM4de99") || strings.Contains(v.recorded, "PqW8x2Lk") {
			t.Errorf("the client's own %q became a variable (%s)", v.recorded, v.rule)
			continue
		}
		w, ok := want[v.recorded]
		if !ok {
			continue
		}
		got[v.recorded] = true
		if x, ok := v.place.extract(live[v.from], nil); !ok || x != w {
			t.Errorf("%s (%s): extracted %q %v from the live answer, want %q", v.recorded, v.rule, x, ok, w)
		}
	}
	for v := range want {
		if !got[v] {
			t.Errorf("no variable for %s; rules:\n%s", v, strings.Join(rules(s), "\n"))
		}
	}
	// The WebSocket's sid comes from the handshake: the upgrade waits for it.
	var sid bool
	for _, k := range uses[4] {
		sid = sid || vars[k].recorded == "lRk9x_3A2bQ7yTzUAAAB" && vars[k].from == 1
	}
	if !sid {
		t.Errorf("the upgrade does not take the handshake's sid; rules:\n%s", strings.Join(rules(s), "\n"))
	}
}

// TestJSONPart: the JSON of bodies that put a guard or a packet type
// before it is read, any other body is left alone.
func TestJSONPart(t *testing.T) {
	for in, want := range map[string]string{
		`0{"sid":"x"}`:       `{"sid":"x"}`,
		`42["message",1]`:    `["message",1]`,
		")]}',\n{\"a\":1}":   `{"a":1}`,
		`for(;;);{"a":1}`:    `{"a":1}`,
		`while(1);[1]`:       `[1]`,
		`{"a":1}`:            `{"a":1}`,
		`12345`:              `12345`,
		`<html>0{</html>`:    `<html>0{</html>`,
		`99999{"too":"long"`: `99999{"too":"long"`,
	} {
		if got := string(jsonPart([]byte(in))); got != want {
			t.Errorf("jsonPart(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBoundaryPlace: the left boundary stops at a delimiter and at digits
// (which differ from user to user), and counts the occurrences before.
func TestBoundaryPlace(t *testing.T) {
	b := []byte(`{"a":{"tok":"first1234x"},"b":{"tok":"second123x"}} id=42 key=abc123def456`)
	for _, tc := range []struct{ token, left string }{
		{"second123x", `"tok":"`},
		{"abc123def456", ` key=`},
	} {
		p, ok := boundaryPlace(b, tc.token)
		if !ok || p.left != tc.left {
			t.Errorf("%s: boundary %q %v, want %q", tc.token, p.left, ok, tc.left)
			continue
		}
		if v, ok := p.boundaryValue(b); !ok || v != tc.token {
			t.Errorf("%s: found %q again", tc.token, v)
		}
	}
	if p, ok := boundaryPlace([]byte(`["/abc123def"]`), "abc123def"); ok {
		t.Errorf("a boundary of %q is no place", p.left)
	}
}

// TestFreshClientUUIDs: a UUID the page made (a kernel channel's
// session_id, sent in the WebSocket's URL and in every message) is made
// afresh for each play of the session, the same in all its requests; a
// UUID the server gave stays the server's (a variable from its answer).
func TestFreshClientUUIDs(t *testing.T) {
	const mine, kernel = "5b9e1c1e-2f6a-4c8e-9d43-0c1f7a2b3e4d", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	ws := exch("GET", "/api/kernels/"+kernel+"/channels?session_id="+mine, "", "")
	ws.WebSocket = &traces.WebSocket{Frames: []traces.Frame{{FromClient: true, Opcode: 1,
		Payload: traces.Body{Data: []byte(`{"header":{"msg_id":"x","session":"` + mine + `"}}`)}}}}
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("POST", "/api/sessions", `{"path":"a.ipynb"}`, `{"id":"9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a","kernel":{"id":"`+kernel+`"}}`),
		ws,
		exch("DELETE", "/api/sessions/9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a?client="+mine, "", ""),
	}}
	vars, uses := correlate(s, nil)
	sc := &script{vars: vars}
	a, b := newSessionVars(sc), newSessionVars(sc)
	var fresh, server int
	for k, v := range vars {
		switch v.recorded {
		case mine:
			fresh++
			if !v.fresh || a.live[k] == "" || a.live[k] == mine || a.live[k] == b.live[k] || !uuidShaped(a.live[k]) {
				t.Errorf("the page's UUID: fresh %v, plays make %q and %q", v.fresh, a.live[k], b.live[k])
			}
			if !slices.Contains(uses[1], k) || !slices.Contains(uses[2], k) {
				t.Errorf("the page's UUID is not replaced in every request that sends it: uses %v", uses)
			}
		case kernel:
			server++
			if v.fresh || v.from != 0 {
				t.Errorf("the kernel's id (%s) is not the server's", v.rule)
			}
		}
	}
	if fresh != 1 || server != 1 {
		t.Errorf("%d variables for the page's UUID, %d for the kernel's; rules:\n%s", fresh, server, strings.Join(rules(s), "\n"))
	}
}

// TestCorrelateJSONInStrings: JSON held in a JSON string is read as JSON,
// as a source (a doc id in an answer's JSON string) and as a sink
// (ActionCable's identifier): the subscription of doc 42 takes the live id
// of the doc this session created, a number or a string, replaced where it
// stands in the escaped text.
func TestCorrelateJSONInStrings(t *testing.T) {
	sub := func(id string) string {
		return `{"command":"subscribe","identifier":"{\"channel\":\"DocChannel\",\"doc_id\":` + id + `}"}`
	}
	ws := exch("GET", "/cable", "", "")
	ws.WebSocket = &traces.WebSocket{Frames: []traces.Frame{
		{FromClient: true, Opcode: 1, Payload: traces.Body{Data: []byte(sub("42"))}},
		{FromClient: true, Opcode: 1, Payload: traces.Body{Data: []byte(sub(`\"42\"`))}},
	}}
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("GET", "/users/7", "", `{"id":7,"name":"ann"}`),
		exch("POST", "/docs", `{"title":"a"}`, `{"event":"created","payload":"{\"doc\":{\"doc_id\":42}}"}`),
		exch("GET", "/docs/7", "", `{"id":7}`),
		ws,
	}}
	vars, uses := correlate(s, nil)
	var v *variable
	for _, k := range uses[3] {
		if vars[k].recorded == "42" {
			v = &vars[k]
		}
	}
	if v == nil || v.from != 1 {
		t.Fatalf("the subscription does not take the created doc's id; rules:\n%s", strings.Join(rules(s), "\n"))
	}
	if got, ok := v.place.extract([]byte(`{"event":"created","payload":"{\"doc\":{\"doc_id\":1042}}"}`), nil); !ok || got != "1042" {
		t.Errorf("%s: extracted %q %v from the live answer", v.rule, got, ok)
	}
	subs := []substitution{{old: "42", new: "1042", idOnly: true}}
	for i, f := range ws.WebSocket.Frames {
		want := sub("1042")
		if i == 1 {
			want = sub(`\"1042\"`)
		}
		if got := string(replaceAll(f.Payload.Data, subs, false)); got != want {
			t.Errorf("frame %d: %s, want %s", i, got, want)
		}
	}
}

// TestCorrelateCreatedOverListed: a notebook the create answer named and a
// listing then held (at an index other users' files shift) is taken from
// the create's answer, not the listing.
func TestCorrelateCreatedOverListed(t *testing.T) {
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("POST", "/api/contents/", `{"type":"notebook"}`, `{"name":"Untitled3.ipynb","path":"Untitled3.ipynb"}`),
		exch("GET", "/api/contents/", "", `{"content":[{"path":"Untitled.ipynb"},{"path":"Untitled3.ipynb"}]}`),
		exch("PATCH", "/api/contents/Untitled3.ipynb", `{"path":"mine.ipynb"}`, `{"path":"mine.ipynb"}`),
	}}
	vars, uses := correlate(s, nil)
	for _, k := range uses[2] {
		if vars[k].recorded == "Untitled3.ipynb" && vars[k].from != 0 {
			t.Errorf("the rename takes the notebook's name from %s", vars[k].rule)
		}
	}
	if len(uses[2]) == 0 {
		t.Errorf("the rename takes no value; rules:\n%s", strings.Join(rules(s), "\n"))
	}
}

// TestSmallIDsByKey: a small id is replaced in JSON only under the keys
// that name it (the subscription's doc_id), never under another that
// holds the same number (the edit's version); in a path it is replaced
// where it stands. correlate gives the variable those keys.
func TestSmallIDsByKey(t *testing.T) {
	frame := `{"command":"message","identifier":"{\"channel\":\"DocChannel\",\"doc_id\":2}","data":"{\"version\":2,\"action\":\"edit\"}"}`
	ws := exch("GET", "/cable", "", "")
	ws.WebSocket = &traces.WebSocket{Frames: []traces.Frame{{FromClient: true, Opcode: 1, Payload: traces.Body{Data: []byte(frame)}}}}
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("POST", "/docs", "title=a", ""),
		exch("GET", "/docs/2.json", "", `{"id":2,"version":2}`),
		ws,
		exch("PATCH", "/docs/2", `{"doc":{"title":"b","version":2}}`, ""),
	}}
	s.Exchanges[0].Status = 302
	s.Exchanges[0].RespHeader = []traces.Header{{Name: "Location", Value: "/docs/2"}}
	vars, uses := correlate(s, nil)
	var v *variable
	for _, k := range uses[2] {
		if vars[k].recorded == "2" {
			v = &vars[k]
		}
	}
	if v == nil {
		t.Fatalf("the subscription takes no doc id; rules:\n%s", strings.Join(rules(s), "\n"))
	}
	if !slices.Contains(v.keys, "doc_id") || slices.Contains(v.keys, "version") {
		t.Errorf("keys %q", v.keys)
	}
	subs := []substitution{{old: "2", new: "37", idOnly: true, keys: v.keys}}
	want := strings.Replace(frame, `doc_id\":2`, `doc_id\":37`, 1)
	if got := string(replaceAll([]byte(frame), subs, false)); got != want {
		t.Errorf("frame\n%s\nwant\n%s", got, want)
	}
	patch := []byte("PATCH /docs/2 HTTP/1.1\r\n\r\n" + `{"doc":{"title":"b","version":2}}`)
	if got := string(replaceAll(patch, subs, true)); got != "PATCH /docs/37 HTTP/1.1\r\n\r\n"+`{"doc":{"title":"b","version":2}}` {
		t.Errorf("patch: %q", got)
	}
}

// TestBoundaryAfterAValue: a boundary never holds the end of the value
// before it (a signed token's base64 tail), which differs from user to
// user.
func TestBoundaryAfterAValue(t *testing.T) {
	b := []byte(`<div id="phx-F9x" data-phx-session="SFMy.g2gD+dAAFHs" data-phx-static="SFMy.Zm9vYmFy1234xyz">`)
	p, ok := boundaryPlace(b, "SFMy.Zm9vYmFy1234xyz")
	if !ok || strings.Contains(p.left, "FHs") {
		t.Fatalf("boundary %q %v", p.left, ok)
	}
	live := []byte(`<div id="phx-Q2w" data-phx-session="SFMy.other/Tok3n+Xy" data-phx-static="SFMy.live0static9">`)
	if v, ok := p.boundaryValue(live); !ok || v != "SFMy.live0static9" {
		t.Errorf("found %q %v in the live page (boundary %q)", v, ok, p.left)
	}
}

// TestSmallIDsByName: user 1, cart item 1 and order 1 in one session; the
// order look-up's orderId takes the order's id, though the cart item's
// came last, and a user_id the user's.
func TestSmallIDsByName(t *testing.T) {
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("GET", "/api/me", "", `{"user":{"id":1,"name":"ann"}}`),
		exch("POST", "/api/checkout", `{"cart":true}`, `{"data":{"checkout":{"order":{"id":1,"total":"9.50"}}}}`),
		exch("POST", "/api/cart/items", `{"sku":"abc"}`, `{"item":{"id":1}}`),
		exch("POST", "/graphql", `{"query":"query Order($orderId: ID!) { order(id: $orderId) { total } }","variables":{"orderId":1,"user_id":1}}`, `{}`),
	}}
	vars, uses := correlate(s, nil)
	live := map[int]string{0: "71", 1: "305", 2: "9044"}
	var subs []substitution
	for _, k := range uses[3] {
		v := vars[k]
		if v.recorded == "1" {
			subs = append(subs, substitution{old: "1", new: live[v.from], idOnly: true, keys: v.keys})
		}
	}
	body := []byte(s.Exchanges[3].ReqBody.Data)
	got := string(replaceAll(body, subs, false))
	if !strings.Contains(got, `"orderId":305`) || !strings.Contains(got, `"user_id":71`) {
		t.Errorf("sent %s; rules:\n%s", got, strings.Join(rules(s), "\n"))
	}
}

// TestListedByIdentity: a product a session took from a listing (by its
// id, at index 1) is found again in a live listing whose order changed
// (other users' items came first) by its other fields, not by its index;
// with no field to tell it, by its index.
func TestListedByIdentity(t *testing.T) {
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("GET", "/api/products", "", `{"items":[{"id":101111,"name":"Red Mug","kind":"mug"},{"id":102222,"name":"Blue Shirt","kind":"shirt"}]}`),
		exch("POST", "/api/cart", `{"product_id":102222}`, `{}`),
	}}
	vars, uses := correlate(s, nil)
	if len(uses[1]) != 1 {
		t.Fatalf("uses %v; rules:\n%s", uses, strings.Join(rules(s), "\n"))
	}
	p := vars[uses[1][0]].place
	live := `{"items":[{"id":900001,"name":"Green Hat","kind":"hat"},{"id":900002,"name":"Red Mug","kind":"mug"},{"id":900003,"name":"Blue Shirt","kind":"shirt"}]}`
	if got, ok := p.extract([]byte(live), nil); !ok || got != "900003" {
		t.Errorf("%s: took %q %v from the reordered listing, want 900003", vars[uses[1][0]].rule, got, ok)
	}
	if got, ok := p.extract([]byte(`{"items":[{"id":7},{"id":8}]}`), nil); !ok || got != "8" {
		t.Errorf("without fields: took %q %v, want the recorded index's 8", got, ok)
	}
}

// TestFrameIDNotInURL: a small number the socket's URL holds under no id's
// name (Engine.IO's EIO=4) does not make a reply's message id 4 the
// client's: the edit takes the live id from the acknowledgement.
func TestFrameIDNotInURL(t *testing.T) {
	ws := exch("GET", "/socket.io/?EIO=4&transport=websocket&sid=abcDEF123456", "", "")
	ws.WebSocket = &traces.WebSocket{Frames: []traces.Frame{
		{FromClient: true, Opcode: 1, Payload: traces.Body{Data: []byte(`421["message",{"text":"hi"}]`)}},
		{Opcode: 1, Payload: traces.Body{Data: []byte(`431[{"id":4}]`)}},
		{FromClient: true, Opcode: 1, Payload: traces.Body{Data: []byte(`422["edit",{"id":4,"text":"hi!"}]`)}},
	}}
	s := &traces.Session{Exchanges: []traces.Exchange{ws}}
	vars, uses := correlate(s, nil)
	for _, k := range uses[0] {
		if v := vars[k]; v.ws && v.recorded == "4" {
			return
		}
	}
	t.Errorf("the edit does not take the acknowledged id; rules:\n%s", strings.Join(rules(s), "\n"))
}

// TestFrameIDsByName: a STOMP socket's frames send a board's id (from the
// redirect that made it, then from the cards' broadcasts as $.boardId) and
// a card's ($.id of its broadcast) in destination headers, a dotted
// topic's included; where the recording gave the board and the card the
// same id, each place in a path takes the live value of the source its
// name names: /app/boards/7/cards/9/move, not 7/7 or 9/9, and
// /app/boards/7/cards/1/move when the card's live id is its recorded 1.
func TestFrameIDsByName(t *testing.T) {
	made := exch("POST", "/boards", "name=b", "")
	made.Status, made.RespHeader = 302, []traces.Header{{Name: "Location", Value: "http://127.0.0.1:8080/boards/1"}}
	frame := func(client bool, text string) traces.Frame {
		return traces.Frame{FromClient: client, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(text + "\x00")}}
	}
	ws := exch("GET", "/ws", "", "")
	ws.Status = 101
	ws.WebSocket = &traces.WebSocket{Frames: []traces.Frame{
		frame(true, "CONNECT\naccept-version:1.2\n\n"),
		frame(false, "CONNECTED\nversion:1.2\n\n"),
		frame(true, "SUBSCRIBE\nid:sub-0\ndestination:/topic/boards.1\n\n"),
		frame(true, "SEND\ndestination:/app/boards/1/cards\nreceipt:r-1\n\n{\"title\":\"a\"}"),
		frame(false, "MESSAGE\ndestination:/topic/boards.1\nsubscription:sub-0\n\n{\"event\":\"added\",\"id\":1,\"boardId\":1,\"title\":\"a\"}"),
		frame(false, "RECEIPT\nreceipt-id:r-1\n\n"),
		frame(true, "SEND\ndestination:/app/boards/1/cards/1/move\nreceipt:r-2\n\n{\"column\":\"doing\"}"),
	}}
	s := &traces.Session{Exchanges: []traces.Exchange{made, ws}}
	lib := FromSessions([]*traces.Session{s})
	sc := &lib.scripts[0]
	// The card's live id may be its recorded one while the board's is not.
	for _, card := range []string{"9", "1"} {
		sv := newSessionVars(sc)
		live := map[string]string{"$.id": card, "$.boardId": "7", "header Location segment 2": "7", "header Location": "/boards/7"}
		for k, v := range sc.vars {
			if val, ok := live[v.place.String()]; ok {
				sv.live[k] = v.prefix + val + v.suffix
			}
		}
		st := &sc.steps[1]
		var got []string
		for _, f := range st.ws.frames {
			got = append(got, string(replaceAll(f.payload, sv.substitutionsAfter(nil, st, nil), false)))
		}
		for i, want := range map[int]string{1: "destination:/topic/boards.7\n", 2: "destination:/app/boards/7/cards\n", 3: "destination:/app/boards/7/cards/" + card + "/move\n"} {
			if !strings.Contains(got[i], want) {
				t.Errorf("message %d: %q, want %q in it; rules:\n%s", i, got[i], want, strings.Join(rules(s), "\n"))
			}
		}
	}
}

// TestClientVersionIsNotAnID: an Action Cable page sends its edits with a
// version of its own (2) inside the data's JSON string; the next document
// the visit makes has the id 2, which its subscription then names. The
// version does not make 2 the client's: the subscription takes the live
// id of the document made.
func TestClientVersionIsNotAnID(t *testing.T) {
	made := func(id string) traces.Exchange {
		ex := exch("POST", "/docs", "title=t", "")
		ex.Status, ex.RespHeader = 302, []traces.Header{{Name: "Location", Value: "http://127.0.0.1:3000/docs/" + id}}
		return ex
	}
	cable := func(id string, versions ...string) traces.Exchange {
		ex := exch("GET", "/cable", "", "")
		ex.Status = 101
		ident := `"{\"channel\":\"DocChannel\",\"doc_id\":` + id + `}"`
		ex.WebSocket = &traces.WebSocket{Frames: []traces.Frame{
			{FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`{"command":"subscribe","identifier":` + ident + `}`)}},
		}}
		for _, v := range versions {
			ex.WebSocket.Frames = append(ex.WebSocket.Frames, traces.Frame{FromClient: true, Opcode: traces.OpText,
				Payload: traces.Body{Data: []byte(`{"command":"message","identifier":` + ident + `,"data":"{\"body\":\"b\",\"version\":` + v + `}"}`)}})
		}
		return ex
	}
	s := &traces.Session{Exchanges: []traces.Exchange{made("1"), cable("1", "1", "2"), made("2"), cable("2", "1")}}
	for _, r := range rules(s) {
		if strings.HasPrefix(r, "POST /docs header Location segment 2 = 2 -> ") && strings.Contains(r, "3") {
			return
		}
	}
	t.Errorf("the second subscription does not take the second document's id; rules:\n%s", strings.Join(rules(s), "\n"))
}
