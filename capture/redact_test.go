package capture

import (
	"bytes"
	"fmt"
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

// TestRedactInsideCompressedBodies: a token in a gzip or br answer and a
// password in a zstd request are redacted, and the stored bodies stay true
// to their headers (they decode, and Content-Length is theirs); a
// compressed body without secrets is kept byte for byte; one that does not
// decode is kept and counted.
func TestRedactInsideCompressedBodies(t *testing.T) {
	const token = "eyJhbGciOiJIUzI1NiJ9.compressed.sig"
	enc := func(s, coding string) []byte {
		b, err := traces.Encode([]byte(s), []string{coding})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := enc(`{"items":[1,2,3]}`, "gzip")
	s := &traces.Session{ID: "z", Exchanges: []traces.Exchange{
		{Method: "POST", URL: "/login", Status: 200,
			ReqHeader:  []traces.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "Content-Encoding", Value: "zstd"}},
			ReqBody:    traces.Body{Data: enc(`{"username":"ann","password":"pw-zstd-secret"}`, "zstd")},
			RespHeader: []traces.Header{{Name: "Content-Encoding", Value: "gzip"}, {Name: "Content-Length", Value: "999"}},
			RespBody:   traces.Body{Data: enc(`{"access_token":"`+token+`"}`, "gzip")}},
		{Method: "GET", URL: "/me", Status: 200,
			ReqHeader:  []traces.Header{{Name: "Authorization", Value: "Bearer " + token}},
			RespHeader: []traces.Header{{Name: "Content-Encoding", Value: "br"}},
			RespBody:   traces.Body{Data: enc(`{"echo":"`+token+`"}`, "br")}},
		{Method: "GET", URL: "/items", Status: 200,
			RespHeader: []traces.Header{{Name: "Content-Encoding", Value: "gzip"}}, RespBody: traces.Body{Data: plain}},
		{Method: "GET", URL: "/broken", Status: 200,
			RespHeader: []traces.Header{{Name: "Content-Encoding", Value: "gzip"}}, RespBody: traces.Body{Data: []byte("not gzip at all")}},
	}}
	rd := NewRedactor([]byte("key"))
	rd.Session(s)
	var all strings.Builder
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		for _, side := range [][]byte{must(t, ex.RequestContent), must(t, ex.ResponseContent)} {
			all.Write(side)
		}
		for _, h := range ex.ReqHeader {
			all.WriteString(h.Value + " ")
		}
	}
	for _, secret := range []string{token, "pw-zstd-secret"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("%q survived redaction inside a compressed body:\n%s", secret, all.String())
		}
	}
	if !strings.Contains(all.String(), `"username":"ann"`) || !placeholderRE.MatchString(all.String()) {
		t.Errorf("redacted content:\n%s", all.String())
	}
	if got := s.Exchanges[0].RespHeader[1].Value; got != fmt.Sprint(len(s.Exchanges[0].RespBody.Data)) {
		t.Errorf("Content-Length %s for a body of %d bytes", got, len(s.Exchanges[0].RespBody.Data))
	}
	if !bytes.Equal(s.Exchanges[2].RespBody.Data, plain) {
		t.Error("a compressed body without secrets was not kept byte for byte")
	}
	if string(s.Exchanges[3].RespBody.Data) != "not gzip at all" || rd.Undecodable() != 1 {
		t.Errorf("undecodable body %q, counted %d", s.Exchanges[3].RespBody.Data, rd.Undecodable())
	}
}

// must returns the content f gives, or the recorded bytes of a body that
// does not decode.
func must(t *testing.T, f func() ([]byte, bool)) []byte {
	t.Helper()
	b, _ := f()
	return b
}

// TestRedactSecretHeaders: headers named like keys and tokens are
// redacted, and those named with WithRedactHeaders; the WebSocket nonce and
// ordinary headers are not.
func TestRedactSecretHeaders(t *testing.T) {
	s := &traces.Session{ID: "h", Exchanges: []traces.Exchange{{Method: "GET", URL: "/x", Status: 200,
		ReqHeader: []traces.Header{
			{Name: "X-API-Key", Value: "key-1234567890"}, {Name: "X-Auth-Token", Value: "tok-1234567890"},
			{Name: "X-Client-Secret", Value: "sec-1234567890"}, {Name: "X-Tenant", Value: "tenant-1234567890"},
			{Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="}, {Name: "Accept", Value: "text/html"},
		}}}}
	rd := NewRedactor([]byte("k"))
	rd.headers = []string{"x-tenant"}
	rd.Session(s)
	got := map[string]string{}
	for _, h := range s.Exchanges[0].ReqHeader {
		got[h.Name] = h.Value
	}
	for _, name := range []string{"X-API-Key", "X-Auth-Token", "X-Client-Secret", "X-Tenant"} {
		if !placeholderRE.MatchString(got[name]) {
			t.Errorf("%s kept %q", name, got[name])
		}
	}
	if got["Sec-WebSocket-Key"] != "dGhlIHNhbXBsZSBub25jZQ==" || got["Accept"] != "text/html" {
		t.Errorf("redacted what is not secret: %v", got)
	}
}

// TestRedactCookieSyntaxes: the session cookie of each framework, set by
// the answer and sent back by a browser (quoted where the browser keeps
// the quotes, with odd spacing, URL-encoded, in chunks), and named in the
// session's key as the sessionizer names it (quotes off): no form of the
// secret is left anywhere in the session, a quoted value keeps its quotes
// around the placeholder, and a logout's cleared cookie stays cleared,
// named by nothing.
func TestRedactCookieSyntaxes(t *testing.T) {
	const expires = "; expires=Sun, 05 Jan 2099 00:00:00 GMT; HttpOnly; Path=/"
	for _, tc := range []struct {
		name    string
		set     []string // Set-Cookie values
		cookie  string   // the Cookie header the browser sends back
		secrets []string // every form of the secret values
	}{
		{"Django sessionid", []string{"sessionid=ab3kd93kd0zq9xk2m4n6p8r0t2v4x6z8; Max-Age=1209600" + expires},
			"csrftoken=Tq0Zf8W2nR4pL6kJ9hG3dS5aY7uI1oE3;sessionid=ab3kd93kd0zq9xk2m4n6p8r0t2v4x6z8", []string{"ab3kd93kd0zq9xk2m4n6p8r0t2v4x6z8"}},
		{"Rails _app_session", []string{"_app_session=Zm9vYmFyYmF6cXV4cXV1eA%3D%3D--abc123def456ghi789--3e2f1a0b9c8d; path=/; HttpOnly; SameSite=Lax"},
			"_app_session=Zm9vYmFyYmF6cXV4cXV1eA%3D%3D--abc123def456ghi789--3e2f1a0b9c8d", []string{"Zm9vYmFyYmF6cXV4cXV1eA%3D%3D--abc123def456ghi789--3e2f1a0b9c8d", "Zm9vYmFyYmF6cXV4cXV1eA==--abc123def456ghi789--3e2f1a0b9c8d"}},
		{"Express connect.sid", []string{"connect.sid=s%3AaBcDeFgHiJkLmNoPqRsTuVwXyZ012345.Xq7vK3%2BJzYp0LmN5oP8qR2sT4uV6wX8yZ0aB1cD2eF; Path=/; HttpOnly"},
			"connect.sid=s%3AaBcDeFgHiJkLmNoPqRsTuVwXyZ012345.Xq7vK3%2BJzYp0LmN5oP8qR2sT4uV6wX8yZ0aB1cD2eF",
			[]string{"s%3AaBcDeFgHiJkLmNoPqRsTuVwXyZ012345.Xq7vK3%2BJzYp0LmN5oP8qR2sT4uV6wX8yZ0aB1cD2eF", "s:aBcDeFgHiJkLmNoPqRsTuVwXyZ012345.Xq7vK3+JzYp0LmN5oP8qR2sT4uV6wX8yZ0aB1cD2eF"}},
		{"Tornado quoted", []string{`username-127-0-0-1-8888="2|1:0|10:1733450000|23:username-127-0-0-1-8888|48:eyJ1c2VybmFtZSI6ICJhbGljZSIsICJuIjogMX0=|5f0ca1e1"` + expires},
			`_xsrf=2|1a2b3c4d|5e6f7a8b9c0d1e2f|1733450000; username-127-0-0-1-8888="2|1:0|10:1733450000|23:username-127-0-0-1-8888|48:eyJ1c2VybmFtZSI6ICJhbGljZSIsICJuIjogMX0=|5f0ca1e1"`,
			[]string{"2|1:0|10:1733450000|23:username-127-0-0-1-8888|48:eyJ1c2VybmFtZSI6ICJhbGljZSIsICJuIjogMX0=|5f0ca1e1", "eyJ1c2VybmFtZSI6ICJhbGljZSIsICJuIjogMX0="}},
		{"Flask session", []string{"session=eyJ1c2VyX2lkIjo0Mn0.Z1K3bA.x9Qz5yF2fO8rK1mN3pL7sT0vW4c; HttpOnly; Path=/"},
			"session=eyJ1c2VyX2lkIjo0Mn0.Z1K3bA.x9Qz5yF2fO8rK1mN3pL7sT0vW4c", []string{"eyJ1c2VyX2lkIjo0Mn0.Z1K3bA.x9Qz5yF2fO8rK1mN3pL7sT0vW4c"}},
		{"PHP PHPSESSID", []string{"PHPSESSID=9f1c2e3d4b5a69788796a5b4c3d2e1f0; path=/; HttpOnly"},
			"  PHPSESSID = 9f1c2e3d4b5a69788796a5b4c3d2e1f0 ;theme=dark", []string{"9f1c2e3d4b5a69788796a5b4c3d2e1f0"}},
		{"ASP.NET chunked", []string{".AspNetCore.Cookies=chunks-2; path=/; samesite=lax; httponly",
			".AspNetCore.CookiesC1=CfDJ8Nq3kW0x_firstHalfOfTheTicket_AbCdEf; path=/; samesite=lax; httponly",
			".AspNetCore.CookiesC2=secondHalfOfTheTicket_GhIjKl-MnOpQr; path=/; samesite=lax; httponly"},
			".AspNetCore.Cookies=chunks-2; .AspNetCore.CookiesC1=CfDJ8Nq3kW0x_firstHalfOfTheTicket_AbCdEf; .AspNetCore.CookiesC2=secondHalfOfTheTicket_GhIjKl-MnOpQr",
			[]string{"CfDJ8Nq3kW0x_firstHalfOfTheTicket_AbCdEf", "secondHalfOfTheTicket_GhIjKl-MnOpQr"}},
		{"Spring JSESSIONID", []string{"JSESSIONID=4F2B9C1D8E7A6B5C4D3E2F1A0B9C8D7E; Path=/; HttpOnly"},
			"JSESSIONID=4F2B9C1D8E7A6B5C4D3E2F1A0B9C8D7E", []string{"4F2B9C1D8E7A6B5C4D3E2F1A0B9C8D7E"}},
		{"Laravel encrypted", []string{"laravel_session=eyJpdiI6IkZ3cGx4b0JtT2lzZz09IiwidmFsdWUiOiJhYmMifQ%3D%3D; expires=Sun, 05 Jan 2099 00:00:00 GMT; Max-Age=7200; path=/; httponly; samesite=lax"},
			"laravel_session=eyJpdiI6IkZ3cGx4b0JtT2lzZz09IiwidmFsdWUiOiJhYmMifQ%3D%3D",
			[]string{"eyJpdiI6IkZ3cGx4b0JtT2lzZz09IiwidmFsdWUiOiJhYmMifQ%3D%3D", "eyJpdiI6IkZ3cGx4b0JtT2lzZz09IiwidmFsdWUiOiJhYmMifQ=="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var set []traces.Header
			for _, v := range tc.set {
				set = append(set, traces.Header{Name: "Set-Cookie", Value: v})
			}
			sc := &sessionizer{cookies: DefaultSessionCookies(), shared: map[string]bool{}}
			keys := requestCookies([]traces.Header{{Name: "Cookie", Value: tc.cookie}})
			s := &traces.Session{ID: "s1", Client: sc.requestKey([]traces.Header{{Name: "Cookie", Value: tc.cookie}}, "10.0.0.1") + " " + strings.Join(keys, " "),
				Exchanges: []traces.Exchange{
					{Method: "POST", URL: "/login", Status: 302, RespHeader: append(set, traces.Header{Name: "Location", Value: "/home"})},
					{Method: "GET", URL: "/home", ReqHeader: []traces.Header{{Name: "Cookie", Value: tc.cookie}}, Status: 200,
						RespBody: traces.Body{Data: []byte(`{"note":"` + tc.secrets[0] + `"}`)}},
					{Method: "POST", URL: "/logout", ReqHeader: []traces.Header{{Name: "Cookie", Value: tc.cookie}}, Status: 200,
						RespHeader: []traces.Header{
							{Name: "Set-Cookie", Value: `messages=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/`},
							{Name: "Set-Cookie", Value: `sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/`},
						}},
				}}
			NewRedactor([]byte("k")).Session(s)
			js, err := s.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range tc.secrets {
				if bytes.Contains(js, []byte(secret)) {
					t.Errorf("the secret %q is left in the session:\n%s", secret, js)
				}
			}
			if strings.Contains(tc.cookie, `="`) && !regexp.MustCompile(`="\{\{[^}]+\}\}"`).MatchString(s.Exchanges[1].ReqHeader[0].Value) {
				t.Errorf("the quoted value lost its quotes: %s", s.Exchanges[1].ReqHeader[0].Value)
			}
			cleared := s.Exchanges[2].RespHeader
			if !strings.HasPrefix(cleared[0].Value, `messages="";`) || !strings.HasPrefix(cleared[1].Value, `sessionid="";`) {
				t.Errorf("cleared cookies changed: %v", cleared)
			}
		})
	}
}
