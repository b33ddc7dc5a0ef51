package replay

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/traces"
)

func TestJudgeBody(t *testing.T) {
	for _, tc := range []struct {
		recorded, live string
		want           report.ErrorKind
	}{
		{`{"type":"confirm_subscription","identifier":"{}"}`, `{"type":"reject_subscription","identifier":"{}"}`, "reject_subscription"},
		{`{"type":"welcome"}`, `{"type":"disconnect","reason":"unauthorized","reconnect":false}`, "disconnect"},
		{`["1","2","room:lobby","phx_reply",{"status":"ok","response":{}}]`, `["1","2","room:lobby","phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]`, "phx_reply:error"},
		{`{"event":"phx_reply","payload":{"status":"ok"}}`, `{"event":"phx_reply","payload":{"status":"error"}}`, "phx_reply:error"},
		{`{"ok":true,"channel":"C1"}`, `{"ok":false,"error":"not_authed"}`, "ok:false"},
		{`{"msg_type":"execute_reply","content":{"status":"ok"}}`, `{"msg_type":"execute_reply","content":{"status":"error","ename":"NameError"}}`, "execute_reply:error"},
		{`{"id":1,"title":"a"}`, `{"errors":{"title":["can't be blank"]}}`, "errors"},
		{`{"access_token":"x"}`, `{"error":"invalid_grant","error_description":"expired"}`, "invalid_grant"},
		{`{"status":"failed"}`, `{"status":"failed"}`, ""}, // as recorded
		{`{"status":"running"}`, `{"status":"done"}`, ""},  // another state, not a refusal
		{`{"errors":[]}`, `{"errors":[]}`, ""},
		{`{"error":null}`, `{"error":null,"data":1}`, ""},
		{`[{"status":"ok"}]`, `[{"status":"ok"},{"status":"failed"}]`, ""},                // a list's records are not the answer's word
		{`{"a":{"b":{"c":{"status":"ok"}}}}`, `{"a":{"b":{"c":{"status":"error"}}}}`, ""}, // too deep
		{`42["joined",{"ok":true}]`, `42["joined",{"ok":false}]`, "ok:false"},
		{`{"type":"data"}`, `{"type":"error","id":"1","payload":[{"message":"x"}]}`, "error"},
		{`{"result":"success"}`, `{"result":"NotFound"}`, "NotFound"},
		{`{"type":"user"}`, `{"type":"nothing"}`, ""}, // "not" before nothing
		{`<html>error</html>`, `<html>error</html>`, ""},
		{`431[{"id":"m1"}]`, `431[{"error":"forbidden"}]`, "forbidden"},                                   // a Socket.IO ack's arguments
		{`40{"sid":"x"}`, `44{"message":"unauthorized"}`, "connect_error"},                                // a Socket.IO connect refused
		{"40{\"sid\":\"x\"}\x1e42[\"joined\",{}]", "40{\"sid\":\"x\"}\x1e43[{\"ok\":false}]", "ok:false"}, // packets of a poll
		{`[{"id":1}]`, `[{"error":"gone"}]`, ""},                                                          // a list's records
		{"RECEIPT\nreceipt-id:1\n\n\x00", "ERROR\nmessage:Access denied\n\nboard 7\x00", "ERROR"},         // STOMP
		{"ERROR\nmessage:x\n\n\x00", "ERROR\nmessage:y\n\n\x00", ""},
		{"MESSAGE\n\n{}\x00", "CONNECTED\nversion:1.2\n\n\x00", ""},
	} {
		said := refusalsOf([]byte(tc.recorded))
		if got := judgeBody([]byte(tc.live), said); got != tc.want {
			t.Errorf("recorded %s, live %s: %q, want %q (recorded said %v)", tc.recorded, tc.live, got, tc.want, said)
		}
	}
}

// TestJudgePush: a frame that answers no message is judged by its own
// fields, not by the payload it carries about someone else.
func TestJudgePush(t *testing.T) {
	for live, want := range map[string]report.ErrorKind{
		`{"type":"disconnect","reason":"unauthorized"}`:                              "disconnect",
		`{"identifier":"x","message":{"type":"user_disconnected","user":"bob"}}`:     "",
		`["3",null,"room:1","presence_diff",{"leaves":{"bob":{}},"status":"error"}]`: "",
		`["3","3","lv:1","phx_error",{}]`:                                            "phx_error",
	} {
		if got := judgePush([]byte(live), nil); got != want {
			t.Errorf("%s: %q, want %q", live, got, want)
		}
	}
}

func TestFailureWord(t *testing.T) {
	for w, want := range map[string]bool{
		"reject_subscription": true, "AuthFailed": true, "not_found": true, "error": true, "ERROR": true,
		"disconnected": true, "ok": false, "notebook": false, "idle": false, "busy": false, "done": false,
		"terror": false, "errand": false, "not": false, "a1b2c3d4": false, "phx_reply": false, "invalid-token": true,
	} {
		if got := failureWord([]byte(w)); got != want {
			t.Errorf("failureWord(%q) = %v", w, got)
		}
	}
}

func TestJudgeStatus(t *testing.T) {
	for _, tc := range []struct {
		name             string
		method           string
		recorded         int
		recordedLocation string
		status           int
		location         string
		want             report.ErrorKind
	}{
		{"lost session", "GET", 200, "", 302, "/admin/login/?next=/admin/posts/", errRedirectLogin},
		{"as recorded", "GET", 302, "/admin/login/?next=/admin/", 302, "/admin/login/?next=/admin/", ""},
		{"another id", "POST", 302, "/posts/12/", 302, "http://127.0.0.1:8000/posts/97/", ""},
		{"elsewhere", "POST", 302, "/posts/12/", 302, "/posts/", errRedirectElsewhere},
		{"form shown again", "POST", 302, "/posts/", 200, "", errFormRefused},
		{"a page as recorded", "GET", 200, "", 200, "", ""},
		{"unexpected", "GET", 200, "", 302, "/posts/", errUnexpectedRedirect},
		{"the visit's first page", "POST", 302, "/posts/", 302, "/start", errRedirectLogin},
		{"not modified", "GET", 200, "", 304, "", ""},
		{"get now a page", "GET", 302, "/x", 200, "", ""},
		{"oauth refused", "GET", 302, "https://app.test/callback?code=x1&state=s", 302, "https://app.test/callback?error=access_denied&state=s", "redirect: access_denied"},
		{"oauth as recorded", "GET", 302, "/callback?error=login_required", 302, "/callback?error=login_required", ""},
		{"laravel back with errors", "POST", 302, "/projects/5", 302, "/projects/create", errRedirectElsewhere},
		{"login back to the saved first page, refused", "POST", 302, "http://h/start?u=a&continue", 302, "/login?error", errRedirectLogin},
		{"login back to the saved first page", "POST", 302, "http://h/start?u=a&continue", 302, "http://127.0.0.1:1/start?u=a&continue", ""},
	} {
		ex := exchangeFor(tc.method, tc.recorded, tc.recordedLocation)
		x := expectationOf(ex, "/start")
		if got := x.judgeStatus(tc.recorded, tc.status, []byte(tc.location)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func exchangeFor(method string, status int, location string) *traces.Exchange {
	ex := &traces.Exchange{Method: method, URL: "/x", Status: status}
	if location != "" {
		ex.RespHeader = []traces.Header{{Name: "Location", Value: location}}
	}
	return ex
}

// TestNoSuspectTheClientMade: a value the client sent before any answer
// gave it (an id the page made, which the server then echoes) is never a
// suspect for --check to suggest a correlation rule for; one the server
// made first is.
func TestNoSuspectTheClientMade(t *testing.T) {
	s := &traces.Session{Exchanges: []traces.Exchange{
		{Method: "POST", URL: "/api/cells", Status: 201, ReqBody: traces.Body{Data: []byte(`{"msg_id":"c7f3a2b1d9e8"}`)},
			RespBody: traces.Body{Data: []byte(`{"msg_id":"c7f3a2b1d9e8","cell":"k29fj38s7d"}`)}},
		{Method: "GET", URL: "/api/cells/c7f3a2b1d9e8", Status: 200},
		{Method: "GET", URL: "/api/kernels/k29fj38s7d", Status: 200, RespBody: traces.Body{Data: []byte(`{"cells":[{"source":"print(1+1)"}]}`)}},
		{Method: "PUT", URL: "/api/notebook", Status: 200, ReqBody: traces.Body{Data: []byte(`{"cells":[{"source":"print(1+1)"}]}`)}},
	}}
	rec := recordedOf(s, nil, make([][]int, len(s.Exchanges)))
	if len(rec[1].suspects) > 0 {
		t.Errorf("the client's own id is a suspect: %+v", rec[1].suspects)
	}
	if len(rec[2].suspects) != 1 || rec[2].suspects[0].value != "k29fj38s7d" {
		t.Errorf("the server's id is not the suspect: %+v", rec[2].suspects)
	}
	if len(rec[3].suspects) > 0 {
		t.Errorf("a cell's source code is a suspect: %+v", rec[3].suspects)
	}
}

// BenchmarkJudgeBody: what holding a JSON answer to its recording costs
// per answer (it allocates nothing unless the answer refuses).
func BenchmarkJudgeBody(b *testing.B) {
	for _, tc := range []struct {
		name string
		body string
	}{
		{"object 1KB", `{"id":7,"status":"active","title":"Video summary agent","description":"` + strings.Repeat("word ", 180) + `"}`},
		{"list 8KB", `{"count":40,"results":[` + strings.Repeat(`{"id":12345,"state":"done","name":"report-2026-12.csv","owner":{"id":3,"type":"user"}},`, 39) +
			`{"id":12346,"state":"done","name":"last.csv","owner":{"id":3,"type":"user"}}]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte(tc.body)
			said := refusalsOf(body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if judgeBody(body, said) != "" {
					b.Fatal("refused")
				}
			}
		})
	}
}

// FuzzScanRefusals: the scan of live answers takes any bytes (it is not
// given only valid JSON): it never panics nor loops, and on a valid
// document it finds what it finds in the same document compacted.
func FuzzScanRefusals(f *testing.F) {
	for _, s := range []string{`{"type":"reject_subscription"}`, `["1","2","t","phx_reply",{"status":"error"}]`, `{"ok":false,"error":{"a":1}}`,
		`{"a":{"b":{"status":"failed"}}}`, `{"errors":[1]}`, `{"x":"\"`, `[`, `{"`, `{"a"`, `{"a":`, `["word","`} {
		f.Add([]byte(s))
	}
	f.Add([]byte("MESSAGE\n\n{}\x00"))
	f.Add([]byte("SEND\ndestination:/app/b/1\n\n{\"a\":1}\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		judgeBody(b, nil) // any bytes, whole: text frames, packets, prefixes
		var found []string
		scanRefusals(b, false, maxSaidDepth, func(path, value, name string) bool { found = append(found, path+"="+value); return true })
		if json.Valid(b) {
			var c bytes.Buffer
			if json.Compact(&c, b) == nil {
				var again []string
				scanRefusals(c.Bytes(), false, maxSaidDepth, func(path, value, name string) bool { again = append(again, path+"="+value); return true })
				if !slices.Equal(found, again) {
					t.Errorf("%q: %v, compacted %v", b, found, again)
				}
			}
		}
	})
}

// TestTextFrames: a text protocol's frame (STOMP) gives the JSON of its
// body as a source, and the paths of its headers are id positions.
func TestTextFrames(t *testing.T) {
	msg := []byte("MESSAGE\ndestination:/topic/boards.2\ncontent-length:20\n\n{\"id\":4,\"boardId\":2}\x00")
	if got := string(jsonPart(msg)); got != `{"id":4,"boardId":2}` {
		t.Errorf("jsonPart: %q", got)
	}
	ids := map[string]bool{}
	framePositions([]byte("SEND\ndestination:/app/boards/2/cards/4/move\nreceipt:r-1\n\n{}\x00"), ids)
	for _, want := range []string{"2", "4"} {
		if !ids[want] {
			t.Errorf("%s is not an id position: %v", want, ids)
		}
	}
	if _, _, ok := textFrame([]byte("hello\nworld\n\n{}")); ok {
		t.Error("a text that is not a frame")
	}
}
