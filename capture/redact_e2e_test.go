package capture_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/zstd"
)

// TestRedactLeaksThroughCapture sends each way a secret leaked past the
// redaction (issue 25, item 9) through the real capture on loopback: a
// multipart password field, WebSocket JSON and form messages with auth and
// token, JSON keys authorization, auth, sessionid, refresh, session_key
// and a password inside an array, the headers Apikey and X-Session, the
// query parameters X-Amz-Signature, code, key and sig, a server-sent
// event's JSON, a form's client_secret and code. Then it looks every
// secret up in the bytes of the trace file, its blocks decompressed: none
// may be there, and the values of names that only look like secret ones
// (author, authorName, keyboard, monkey, codeName, zipcode) must be.
func TestRedactLeaksThroughCapture(t *testing.T) {
	secret := func(what string) string { return "E2E-" + what + "-S3cr3t-9f8e7d" }
	kept := func(what string) string { return "KEPT-" + what + "-9f8e7d" }
	var secrets, keeps []string
	s := func(what string) string { v := secret(what); secrets = append(secrets, v); return v }
	k := func(what string) string { v := kept(what); keeps = append(keeps, v); return v }

	login := fmt.Sprintf(`{"username":"ann","password":%q,"auth":%q,"author":%q}`, s("login-password"), s("login-auth"), k("login-author"))
	answer := fmt.Sprintf(`{"access":%q,"refresh":%q,"sessionid":%q,"authorization":%q,"auth":%q,"session_key":%q,`+
		`"users":[{"name":"ann","password":%q}],"tokens":[%q],"author":%q,"authorName":%q,"keyboard":%q,"monkey":%q,"codeName":%q,"zipcode":%q,"code":%q}`,
		s("access"), s("refresh"), s("sessionid"), s("authorization"), s("auth"), s("session-key"), s("array-password"), s("array-token"),
		k("author"), k("authorName"), k("keyboard"), k("monkey"), k("codeName"), k("zipcode"), k("json-code"))
	wsFrames := []string{
		fmt.Sprintf(`{"auth":%q,"author":%q}`, s("ws-auth"), k("ws-author")),
		fmt.Sprintf(`{"type":"join","auth":{"sessionId":%q}}`, s("ws-session-id")),
		"token=" + s("ws-form-token") + "&room=" + k("ws-room"),
	}
	event := fmt.Sprintf(`{"access_token":%q,"author":%q}`, s("sse-token"), k("sse-author"))
	query := url.Values{"X-Amz-Signature": {s("amz-signature")}, "code": {s("query-code")}, "key": {s("query-key")}, "sig": {s("query-sig")},
		"zipcode": {k("query-zipcode")}, "codeName": {k("query-codeName")}, "monkey": {k("query-monkey")}}
	form := url.Values{"client_secret": {s("form-client-secret")}, "code": {s("form-code")}, "keyboard": {k("form-keyboard")}}
	apikey, xsession, xauthor := s("header-apikey"), s("header-x-session"), k("header-x-author")
	mpPassword, mpAuthor := s("multipart-password"), k("multipart-author")

	up := websocket.Upgrader{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/api/login":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, answer)
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "event: session\ndata: "+event+"\n\n")
		case "/ws":
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			for {
				kind, msg, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if err := ws.WriteMessage(kind, msg); err != nil {
					return
				}
			}
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	defer backend.Close()
	p := startProxy(t, backend.URL)

	send := func(method, path, contentType string, body []byte, header ...string) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, p.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header[header[i]] = []string{header[i+1]} // as written: Apikey, not canonicalized
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s", method, path, resp.Status)
		}
	}
	send("POST", "/api/login", "application/json", []byte(login))
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	for _, f := range [][2]string{{"username", "ann"}, {"password", mpPassword}, {"author", mpAuthor}} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	send("POST", "/api/upload", mw.FormDataContentType(), mp.Bytes())
	send("GET", "/files/report.pdf?"+query.Encode(), "", nil, "Apikey", apikey, "X-Session", xsession, "X-Author", xauthor)
	send("POST", "/form", "application/x-www-form-urlencoded", []byte(form.Encode()))
	send("GET", "/events", "", nil)

	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"/ws", nil)
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range wsFrames {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if _, echo, err := ws.ReadMessage(); err != nil || string(echo) != m {
			t.Fatalf("echo %q, %v", echo, err)
		}
	}
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	_, _, _ = ws.ReadMessage() // the close answered
	ws.Close()

	sessions := p.stop()
	exchanges := 0
	for _, s := range sessions {
		exchanges += len(s.Exchanges)
	}
	if exchanges != 6 {
		t.Fatalf("%d exchanges in the trace, want 6", exchanges)
	}
	trace := decompressedTrace(t, p.path)
	for _, v := range secrets {
		if bytes.Contains(trace, []byte(v)) {
			i := bytes.Index(trace, []byte(v))
			t.Errorf("the secret %q is in the trace: …%q…", v, trace[max(0, i-80):min(len(trace), i+len(v)+20)])
		}
	}
	for _, v := range keeps {
		if !bytes.Contains(trace, []byte(v)) {
			t.Errorf("%q, not a secret, is not in the trace as it was sent", v)
		}
	}
	for _, ph := range []string{`"password":"{{password:`, "{{x-session:", "{{apikey:", "sig={{sig:", "code={{code:", "\r\n\r\n{{password:"} {
		if !bytes.Contains(trace, []byte(ph)) {
			t.Errorf("no %q in the trace", ph)
		}
	}
}

// decompressedTrace returns the metadata and the decompressed blocks of a
// trace file, one after the other: every byte of the trace that a reader
// of the file could see.
func decompressedTrace(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const fileHead, blockHead = 4 + 2 + 4, 24
	if len(raw) < fileHead || string(raw[:4]) != "THRV" {
		t.Fatalf("%s: not a trace", path)
	}
	metaLen := int(binary.LittleEndian.Uint32(raw[6:]))
	out := append([]byte(nil), raw[fileHead:fileHead+metaLen]...)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	blocks := 0
	for off := fileHead + metaLen + 4; off+blockHead <= len(raw); {
		switch string(raw[off : off+4]) {
		case "TEND":
			if blocks == 0 {
				t.Fatal("a trace without blocks")
			}
			return out
		case "TBLK":
		default:
			t.Fatalf("%s: no block at byte %d", path, off)
		}
		stored := int(binary.LittleEndian.Uint32(raw[off+4:]))
		block, err := dec.DecodeAll(raw[off+blockHead:off+blockHead+stored], nil)
		if err != nil {
			t.Fatalf("%s: block at byte %d: %v", path, off, err)
		}
		out = append(out, block...)
		off += blockHead + stored
		blocks++
	}
	t.Fatalf("%s: no end record", path)
	return nil
}
