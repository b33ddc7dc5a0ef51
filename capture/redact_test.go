package capture

import (
	"regexp"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

var placeholderRE = regexp.MustCompile(`\{\{([a-z_.-]+):([0-9a-f]{8})\}\}`)

func TestRedactSession(t *testing.T) {
	const (
		sid   = "c2Vzc2lvbi1zZWNyZXQ.abcdefghijkl"
		csrf  = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
		token = "eyJhbGciOiJIUzI1NiJ9.payload.sig"
	)
	s := &traces.Session{ID: "s1", Client: "cookie:sessionid=" + sid, Exchanges: []traces.Exchange{
		{
			Method: "POST", URL: "/api/auth/login/?api_key=k3y-value-1",
			ReqHeader: []traces.Header{{Name: "Content-Type", Value: "application/json"}},
			ReqBody:   traces.Body{Data: []byte(`{"username":"ann","password":"pw-ann <&>","remember":true}`)},
			Status:    200,
			RespHeader: []traces.Header{
				{Name: "Set-Cookie", Value: "sessionid=" + sid + "; Path=/; HttpOnly"},
				{Name: "Set-Cookie", Value: "csrftoken=" + csrf + "; Path=/"},
			},
			RespBody: traces.Body{Data: []byte(`{"access_token":"` + token + `","user":{"id":1,"tokens":3}}`)},
		},
		{
			Method: "POST", URL: "/api/chat/",
			ReqHeader: []traces.Header{
				{Name: "Cookie", Value: "csrftoken=" + csrf + "; sessionid=" + sid},
				{Name: "X-CSRFToken", Value: csrf},
				{Name: "Authorization", Value: "Bearer " + token},
				{Name: "Content-Type", Value: "application/x-www-form-urlencoded"},
			},
			ReqBody: traces.Body{Data: []byte("message=hi&secret=s%26cret&n=1")},
			Status:  200,
		},
		{
			Method: "GET", URL: "/ws/chat/", Status: 101,
			WebSocket: &traces.WebSocket{Frames: []traces.Frame{
				{FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`{"token":"frame-secret-1","csrf":"` + csrf + `"}`)}},
			}},
		},
	}}
	NewRedactor([]byte("key")).Session(s)
	all, _ := s.MarshalJSON()
	for _, secret := range []string{sid, csrf, token, "pw-ann", "k3y-value-1", "s%26cret", "frame-secret-1"} {
		if strings.Contains(string(all), secret) {
			t.Errorf("%q survived redaction", secret)
		}
	}
	for _, kept := range []string{`"username":"ann"`, `"remember":true`, `"tokens":3`, "message=hi", "n=1", "Path=/; HttpOnly"} {
		if !strings.Contains(string(all), strings.ReplaceAll(kept, `"`, `\"`)) && !strings.Contains(string(all), kept) {
			t.Errorf("%q was lost", kept)
		}
	}
	// The same secret is the same placeholder everywhere, named where it was
	// first seen.
	ex0, ex1 := &s.Exchanges[0], &s.Exchanges[1]
	csrfCookie := strings.TrimSuffix(strings.TrimPrefix(ex0.RespHeader[1].Value, "csrftoken="), "; Path=/")
	if !placeholderRE.MatchString(csrfCookie) || !strings.HasPrefix(csrfCookie, "{{csrftoken:") {
		t.Fatalf("csrftoken cookie became %q", csrfCookie)
	}
	if ex1.ReqHeader[1].Value != csrfCookie {
		t.Fatalf("X-CSRFToken %q, want the cookie's placeholder %q", ex1.ReqHeader[1].Value, csrfCookie)
	}
	if !strings.Contains(ex1.ReqHeader[0].Value, "csrftoken="+csrfCookie) {
		t.Fatalf("Cookie %q", ex1.ReqHeader[0].Value)
	}
	auth := ex1.ReqHeader[2].Value
	if !strings.HasPrefix(auth, "Bearer {{access_token:") {
		t.Fatalf("Authorization %q: want the bearer scheme and the name the token was first seen under", auth)
	}
	if !strings.Contains(string(ex0.RespBody.Data), strings.TrimPrefix(auth, "Bearer ")) {
		t.Fatalf("login answer %s does not hold the same placeholder as %q", ex0.RespBody.Data, auth)
	}
	if !strings.Contains(s.Client, "{{sessionid:") {
		t.Fatalf("client key %q", s.Client)
	}
	if !strings.Contains(string(ex0.ReqBody.Data), `"password":"{{password:`) {
		t.Fatalf("login body %s", ex0.ReqBody.Data)
	}
	if !strings.Contains(ex0.URL, "api_key={{api_key:") {
		t.Fatalf("URL %s", ex0.URL)
	}
	// Stable: the same key and secret give the same placeholder in another
	// session and another Redactor.
	other := &traces.Session{Exchanges: []traces.Exchange{{ReqHeader: []traces.Header{{Name: "X-CSRFToken", Value: "x"}, {Name: "Cookie", Value: "csrftoken=" + csrf}}}}}
	NewRedactor([]byte("key")).Session(other)
	if got := other.Exchanges[0].ReqHeader[1].Value; got != "csrftoken="+csrfCookie {
		t.Fatalf("another Redactor made %q, want %q", got, "csrftoken="+csrfCookie)
	}
}

func TestRedactLeavesOtherBodiesAlone(t *testing.T) {
	for _, body := range []string{`not json {`, `[1,2,{"a":"b"}]`, `{"password":""}`, `{"password":12345}`, "\x00\xff"} {
		s := &traces.Session{Exchanges: []traces.Exchange{{Method: "POST", URL: "/", ReqBody: traces.Body{Data: []byte(body)}}}}
		NewRedactor(nil).Session(s)
		if got := string(s.Exchanges[0].ReqBody.Data); got != body {
			t.Errorf("%q became %q", body, got)
		}
	}
}
