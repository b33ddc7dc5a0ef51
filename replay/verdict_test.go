package replay

import (
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
	} {
		said := refusalsOf(jsonPart([]byte(tc.recorded)))
		if got := judgeBody([]byte(tc.live), said); got != tc.want {
			t.Errorf("recorded %s, live %s: %q, want %q (recorded said %v)", tc.recorded, tc.live, got, tc.want, said)
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
