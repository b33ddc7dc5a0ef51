package capture

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
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

// sessionBytes returns everything of s that reaches the trace file, as
// text, for looking a secret up in.
func sessionBytes(s *traces.Session) string {
	var b strings.Builder
	b.WriteString(s.Client + "\n")
	for _, ex := range s.Exchanges {
		b.WriteString(ex.URL + "\n")
		for _, hs := range [][]traces.Header{ex.ReqHeader, ex.RespHeader} {
			for _, h := range hs {
				b.WriteString(h.Name + ": " + h.Value + "\n")
			}
		}
		b.Write(ex.ReqBody.Data)
		b.Write(ex.RespBody.Data)
		if ws := ex.WebSocket; ws != nil {
			for _, f := range ws.Frames {
				b.Write(f.Payload.Data)
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// multipartBody returns a multipart/form-data body of fields (name,
// value) and its Content-Type; a name with a "; filename" is a file.
func multipartBody(fields ...[2]string) ([]byte, string) {
	const boundary = "----thriveBoundary0x7e"
	var b strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&b, "--%s\r\nContent-Disposition: form-data; name=%s\r\n", boundary, f[0])
		if strings.Contains(f[0], "filename") {
			b.WriteString("Content-Type: text/plain\r\n")
		}
		fmt.Fprintf(&b, "\r\n%s\r\n", f[1])
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return []byte(b.String()), "multipart/form-data; boundary=" + boundary
}

// secretNames are the names the redaction must know in every position:
// each is given its own secret value, "<name>-secret-value-9q8w7e".
var secretNames = []string{ //nolint:gochecknoglobals // test table
	"X-Api-Key", "apiKey", "api_key", "Apikey", "session_key", "sessionId", "sessionid", "X-Amz-Signature",
	"refresh_token", "client_secret", "access_token", "id_token", "password", "passwd", "pwd", "secret",
	"token", "auth", "authorization", "signature", "sig", "key", "refresh", "user[password]", "newPassword",
	"X-Session", "Authorization", "otp_code", "csrfmiddlewaretoken",
}

// harmlessNames look like secret names but are not: their values must be
// kept byte for byte, or replay could not correlate them.
var harmlessNames = []string{ //nolint:gochecknoglobals // test table
	"keyboard", "monkey", "author", "authorName", "codeName", "zipcode", "token_type", "signature_method",
	"session_count", "key_name", "passenger", "bypass", "author_id", "oauth_version",
}

func secretOf(name string) string {
	return strings.NewReplacer("[", "", "]", "").Replace(name) + "-secret-value-9q8w7e"
}

func harmlessOf(name string) string { return "kept-" + name + "-value-1a2b3c4d" }

// namedFields returns name/value pairs of every secret and harmless name.
func namedFields() [][2]string {
	var out [][2]string
	for _, n := range secretNames {
		out = append(out, [2]string{n, secretOf(n)})
	}
	for _, n := range harmlessNames {
		out = append(out, [2]string{n, harmlessOf(n)})
	}
	return out
}

func namedJSON() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range namedFields() {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%q", f[0], f[1])
	}
	b.WriteByte('}')
	return b.String()
}

func namedForm() string {
	var parts []string
	for _, f := range namedFields() {
		parts = append(parts, url.QueryEscape(f[0])+"="+url.QueryEscape(f[1]))
	}
	return strings.Join(parts, "&")
}

func allSecrets() []string {
	var out []string
	for _, n := range secretNames {
		out = append(out, secretOf(n))
	}
	return out
}

func allHarmless() []string {
	var out []string
	for _, n := range harmlessNames {
		out = append(out, harmlessOf(n))
	}
	return out
}

// TestRedactLeaks: each way a secret leaked past the redaction (issue 25,
// item 9), and every secret name in every position: no byte of a secret
// value is left anywhere in the session, each took a placeholder, and the
// values of names that only look like secret ones are kept.
func TestRedactLeaks(t *testing.T) {
	mp, mpType := multipartBody(
		[2]string{`"username"`, "ann"},
		[2]string{`"password"`, "mp-password-secret-Zx81"},
		[2]string{`"author"`, "kept-mp-author-Zx81"},
		[2]string{`"zipcode"`, "kept-mp-zipcode-Zx81"},
		[2]string{`"code"`, "mp-code-secret-Zx81"},
		[2]string{`"keyboard"; filename="monkey.txt"`, "kept-mp-file-Zx81"},
	)
	var mpNamed [][2]string
	for _, f := range namedFields() {
		mpNamed = append(mpNamed, [2]string{strconv.Quote(f[0]), f[1]})
	}
	mpAll, mpAllType := multipartBody(mpNamed...)
	var namedHeaders []traces.Header
	for _, n := range []string{"X-Api-Key", "Apikey", "X-Session", "X-Amz-Signature", "X-Auth-Token", "X-Session-Id", "Signature", "X-Hub-Signature-256"} {
		namedHeaders = append(namedHeaders, traces.Header{Name: n, Value: secretOf(n)})
	}
	for _, n := range []string{"X-Author", "Keep-Alive", "X-Keyboard", "Access-Control-Allow-Origin", "Signature-Input", "X-Zipcode"} {
		namedHeaders = append(namedHeaders, traces.Header{Name: n, Value: harmlessOf(n)})
	}
	json := func(s string) []traces.Header { return []traces.Header{{Name: "Content-Type", Value: s}} }
	for _, tc := range []struct {
		name    string
		ex      traces.Exchange
		secrets []string // values that must be gone
		kept    []string // values that must be there, byte for byte
		want    []string // what must be there instead
	}{
		{name: "multipart password field",
			ex:      traces.Exchange{Method: "POST", URL: "/signup", ReqHeader: json(mpType), ReqBody: traces.Body{Data: mp}},
			secrets: []string{"mp-password-secret-Zx81", "mp-code-secret-Zx81"},
			kept:    []string{"kept-mp-author-Zx81", "kept-mp-zipcode-Zx81", "kept-mp-file-Zx81", "name=\"username\"\r\n\r\nann\r\n"},
			want:    []string{"name=\"password\"\r\n\r\n{{password:", "name=\"code\"\r\n\r\n{{code:"}},
		{name: "multipart every name",
			ex:      traces.Exchange{Method: "POST", URL: "/form", ReqHeader: json(mpAllType), ReqBody: traces.Body{Data: mpAll}},
			secrets: allSecrets(), kept: allHarmless()},
		{name: "websocket auth frames",
			ex: traces.Exchange{Method: "GET", URL: "/ws", Status: 101, WebSocket: &traces.WebSocket{Frames: []traces.Frame{
				{FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`{"auth":"ws-auth-secret-Q1w2","author":"kept-ws-author-Q1w2"}`)}},
				{FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`{"type":"hello","auth":{"sessionId":"ws-nested-secret-Q1w2"}}`)}},
				{FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`42["login",{"password":"ws-socketio-secret-Q1w2"}]`)}},
				{FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`token=ws-form-secret-Q1w2&room=kept-ws-room-Q1w2`)}},
				{FromClient: false, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(` {"refresh":"ws-refresh-secret-Q1w2"}`)}},
			}}},
			secrets: []string{"ws-auth-secret-Q1w2", "ws-nested-secret-Q1w2", "ws-socketio-secret-Q1w2", "ws-form-secret-Q1w2", "ws-refresh-secret-Q1w2"},
			kept:    []string{"kept-ws-author-Q1w2", "kept-ws-room-Q1w2", `"type":"hello"`, `42["login",{"password":"{{password:`}},
		{name: "websocket every name",
			ex: traces.Exchange{Method: "GET", URL: "/ws", Status: 101, WebSocket: &traces.WebSocket{Frames: []traces.Frame{
				{FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(namedJSON())}},
				{FromClient: false, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(namedForm())}},
			}}},
			secrets: allSecrets(), kept: allHarmless()},
		{name: "json keys",
			ex: traces.Exchange{Method: "POST", URL: "/api", ReqHeader: json("application/json"),
				ReqBody: traces.Body{Data: []byte(`{"authorization":"j-authz-secret-E3r4","auth":"j-auth-secret-E3r4","sessionid":"j-sid-secret-E3r4",` +
					`"refresh":"j-refresh-secret-E3r4","session_key":"j-sk-secret-E3r4","code":"kept-j-code-E3r4","author":"kept-j-author-E3r4"}`)}},
			secrets: []string{"j-authz-secret-E3r4", "j-auth-secret-E3r4", "j-sid-secret-E3r4", "j-refresh-secret-E3r4", "j-sk-secret-E3r4"},
			kept:    []string{"kept-j-code-E3r4", "kept-j-author-E3r4"},
			want:    []string{`"refresh":"{{refresh:`, `"session_key":"{{session_key:`}},
		{name: "json arrays",
			ex: traces.Exchange{Method: "POST", URL: "/api", Status: 200,
				RespBody: traces.Body{Data: []byte(`{"users":[{"name":"kept-j-name-T5y6","password":"j-arr-pw-secret-T5y6"},{"password":"j-arr-pw2-secret-T5y6"}],` +
					`"tokens":["j-tok-a-secret-T5y6","j-tok-b-secret-T5y6"],"deep":[[{"x":{"client_secret":"j-deep-secret-T5y6"}}]],"keys":["kept-j-keys-T5y6"]}`)}},
			secrets: []string{"j-arr-pw-secret-T5y6", "j-arr-pw2-secret-T5y6", "j-tok-a-secret-T5y6", "j-tok-b-secret-T5y6", "j-deep-secret-T5y6"},
			kept:    []string{"kept-j-name-T5y6", "kept-j-keys-T5y6"}},
		{name: "json every name",
			ex:      traces.Exchange{Method: "POST", URL: "/api", ReqHeader: json("application/json"), ReqBody: traces.Body{Data: []byte(namedJSON())}},
			secrets: allSecrets(), kept: allHarmless()},
		{name: "headers",
			ex: traces.Exchange{Method: "GET", URL: "/h", ReqHeader: []traces.Header{
				{Name: "Apikey", Value: "h-apikey-secret-U7i8"}, {Name: "X-Session", Value: "h-xsession-secret-U7i8"},
				{Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="}, {Name: "X-Author", Value: "kept-h-author-U7i8"},
			}, Status: 200, RespHeader: []traces.Header{{Name: "Refresh", Value: "5; url=/kept-h-refresh-U7i8"}}},
			secrets: []string{"h-apikey-secret-U7i8", "h-xsession-secret-U7i8"},
			kept:    []string{"dGhlIHNhbXBsZSBub25jZQ==", "kept-h-author-U7i8", "5; url=/kept-h-refresh-U7i8"},
			want:    []string{"Apikey: {{apikey:", "X-Session: {{x-session:"}},
		{name: "headers every name",
			ex:      traces.Exchange{Method: "GET", URL: "/h", ReqHeader: namedHeaders},
			secrets: []string{secretOf("X-Api-Key"), secretOf("Apikey"), secretOf("X-Session"), secretOf("X-Amz-Signature"), secretOf("X-Auth-Token"), secretOf("X-Session-Id"), secretOf("Signature"), secretOf("X-Hub-Signature-256")},
			kept:    []string{harmlessOf("X-Author"), harmlessOf("Keep-Alive"), harmlessOf("X-Keyboard"), harmlessOf("Access-Control-Allow-Origin"), harmlessOf("Signature-Input"), harmlessOf("X-Zipcode")}},
		{name: "query parameters",
			ex: traces.Exchange{Method: "GET", URL: "https://s3.example.com/b/o?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=q-amzsig-secret-O9p0&code=q-code-secret-O9p0" +
				"&key=q-key-secret-O9p0&sig=q-sig-secret-O9p0&codeName=kept-q-codename-O9p0&zipcode=kept-q-zip-O9p0&monkey=kept-q-monkey-O9p0"},
			secrets: []string{"q-amzsig-secret-O9p0", "q-code-secret-O9p0", "q-key-secret-O9p0", "q-sig-secret-O9p0"},
			kept:    []string{"X-Amz-Algorithm=AWS4-HMAC-SHA256", "codeName=kept-q-codename-O9p0", "zipcode=kept-q-zip-O9p0", "monkey=kept-q-monkey-O9p0"},
			want:    []string{"code={{code:", "sig={{sig:", "key={{key:", "X-Amz-Signature={{X-Amz-Signature:"}},
		{name: "query every name",
			ex:      traces.Exchange{Method: "GET", URL: "/q?" + namedForm()},
			secrets: allSecrets(), kept: allHarmless()},
		{name: "query in Location and Referer",
			ex: traces.Exchange{Method: "GET", URL: "/authorize", Status: 302,
				ReqHeader:  []traces.Header{{Name: "Referer", Value: "https://idp.example.com/cb?code=loc-code-secret-A1s2&state=kept-state-A1s2"}},
				RespHeader: []traces.Header{{Name: "Location", Value: "/callback?code=loc-code2-secret-A1s2&state=kept-state-A1s2"}}},
			secrets: []string{"loc-code-secret-A1s2", "loc-code2-secret-A1s2"},
			kept:    []string{"state=kept-state-A1s2"}},
		{name: "urlencoded form every name",
			ex:      traces.Exchange{Method: "POST", URL: "/f", ReqHeader: json("application/x-www-form-urlencoded; charset=UTF-8"), ReqBody: traces.Body{Data: []byte(namedForm() + "&code=f-code-secret-D3f4")}},
			secrets: append(allSecrets(), "f-code-secret-D3f4"), kept: allHarmless()},
		{name: "graphql variables in the query",
			ex:      traces.Exchange{Method: "GET", URL: "/graphql?operationName=Login&variables=" + url.QueryEscape(`{"input":{"password":"gql-pw-secret-G5h6","author":"kept-gql-author-G5h6"}}`)},
			secrets: []string{"gql-pw-secret-G5h6"}, kept: []string{url.QueryEscape("kept-gql-author-G5h6"), "operationName=Login"}},
		{name: "server-sent events",
			ex: traces.Exchange{Method: "GET", URL: "/events", Status: 200, RespHeader: json("text/event-stream; charset=utf-8"),
				RespBody: traces.Body{Data: []byte("event: session\ndata: {\"access_token\":\"sse-token-secret-H7j8\",\"author\":\"kept-sse-author-H7j8\"}\n\n" +
					"data:{\"users\":[{\"apiKey\":\"sse-key-secret-H7j8\"}]}\n\ndata: plain text kept-sse-text-H7j8\n\n")}},
			secrets: []string{"sse-token-secret-H7j8", "sse-key-secret-H7j8"},
			kept:    []string{"event: session\ndata: {\"access_token\":\"{{access_token:", "kept-sse-author-H7j8", "data: plain text kept-sse-text-H7j8\n\n"}},
		{name: "server-sent events every name",
			ex: traces.Exchange{Method: "GET", URL: "/events", Status: 200, RespHeader: json("text/event-stream"),
				RespBody: traces.Body{Data: []byte("data: " + namedJSON() + "\n\n")}},
			secrets: allSecrets(), kept: allHarmless()},
		{name: "bearer scheme kept",
			ex: traces.Exchange{Method: "POST", URL: "/token", Status: 200,
				RespBody: traces.Body{Data: []byte(`{"access_token":"bearer-tok-secret-K9l0","token_type":"Bearer","expires_in":3600}`)}},
			secrets: []string{"bearer-tok-secret-K9l0"},
			kept:    []string{`"token_type":"Bearer"`, `"expires_in":3600`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &traces.Session{ID: "leak", Exchanges: []traces.Exchange{tc.ex}}
			NewRedactor([]byte("k")).Session(s)
			got := sessionBytes(s)
			for _, secret := range tc.secrets {
				if strings.Contains(got, secret) {
					t.Errorf("the secret %q is left in:\n%s", secret, got)
				}
			}
			for _, kept := range tc.kept {
				if !strings.Contains(got, kept) {
					t.Errorf("%q was changed:\n%s", kept, got)
				}
			}
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("no %q in:\n%s", want, got)
				}
			}
			if n := len(placeholderAnyRE.FindAllString(got, -1)); n < len(tc.secrets) {
				t.Errorf("%d placeholders for %d secrets:\n%s", n, len(tc.secrets), got)
			}
		})
	}
}

// placeholderAnyRE is a placeholder under any name replay accepts.
var placeholderAnyRE = regexp.MustCompile(`\{\{[A-Za-z0-9_.\[\]-]+:[0-9a-f]{8}\}\}`)

// TestRedactSecretName: the one rule, by name and position.
func TestRedactSecretName(t *testing.T) {
	for _, tc := range []struct {
		name string
		pos  position
		want strength
	}{
		{"password", inJSON, strongSecret}, {"Password", inHeader, strongSecret}, {"user[password]", inForm, strongSecret},
		{"newPassword", inJSON, strongSecret}, {"password_confirmation", inForm, strongSecret}, {"password2", inForm, strongSecret},
		{"passwd", inJSON, strongSecret}, {"pwd", inForm, strongSecret}, {"pass", inForm, strongSecret},
		{"secret", inJSON, strongSecret}, {"client_secret", inForm, strongSecret}, {"clientSecret", inJSON, strongSecret},
		{"token", inJSON, strongSecret}, {"access_token", inForm, strongSecret}, {"id_token", inJSON, strongSecret},
		{"refresh_token", inJSON, strongSecret}, {"X-CSRFToken", inHeader, strongSecret}, {"csrfmiddlewaretoken", inForm, strongSecret},
		{"X-Auth-Token", inHeader, strongSecret}, {"nextPageToken", inForm, strongSecret}, {"id_token_hint", inForm, strongSecret},
		{"X-Api-Key", inHeader, strongSecret}, {"apiKey", inJSON, strongSecret}, {"api_key", inForm, strongSecret},
		{"Apikey", inHeader, strongSecret}, {"APIKEY", inForm, strongSecret}, {"session_key", inJSON, strongSecret},
		{"private_key", inJSON, strongSecret}, {"api_key_id", inJSON, strongSecret},
		{"sessionid", inJSON, strongSecret}, {"authorization", inJSON, strongSecret}, {"otp_code", inForm, strongSecret},
		{"credentials", inJSON, strongSecret}, {"tokens", inJSON, strongSecret}, {"jwt", inJSON, strongSecret},
		{"key", inForm, weakSecret}, {"key", inJSON, weakSecret}, {"sort_key", inForm, weakSecret},
		{"auth", inJSON, weakSecret}, {"X-Session", inHeader, sessionSecret}, {"sessionId", inJSON, sessionSecret},
		{"session_id", inForm, sessionSecret}, {"X-Amz-Signature", inForm, weakSecret}, {"sig", inForm, weakSecret},
		{"signature", inJSON, weakSecret}, {"X-Hub-Signature-256", inHeader, weakSecret},
		{"code", inForm, weakSecret}, {"Code", inForm, weakSecret}, {"refresh", inJSON, weakSecret}, {"access", inForm, weakSecret},
		{"code", inJSON, notSecret}, {"code", inHeader, notSecret}, {"Refresh", inHeader, notSecret}, {"access", inHeader, notSecret},
		{"keyboard", inJSON, notSecret}, {"monkey", inForm, notSecret}, {"author", inJSON, notSecret}, {"authorName", inJSON, notSecret},
		{"codeName", inForm, notSecret}, {"zipcode", inForm, notSecret}, {"zip_code", inForm, notSecret}, {"country_code", inForm, notSecret},
		{"token_type", inJSON, notSecret}, {"expires_in", inJSON, notSecret}, {"signature_method", inForm, notSecret},
		{"Signature-Input", inHeader, notSecret}, {"Keep-Alive", inHeader, notSecret}, {"Access-Control-Allow-Origin", inHeader, notSecret},
		{"Public-Key-Pins", inHeader, notSecret}, {"WWW-Authenticate", inHeader, notSecret}, {"oauth_version", inForm, notSecret},
		{"passenger", inJSON, notSecret}, {"bypass", inJSON, notSecret}, {"compass", inJSON, notSecret}, {"author_id", inJSON, notSecret},
		{"session", inJSON, notSecret}, {"session", inForm, notSecret}, {"Session", inHeader, sessionSecret}, {"totp", inJSON, strongSecret},
		{"session_count", inJSON, notSecret}, {"key_name", inJSON, notSecret}, {"keys", inJSON, notSecret}, {"sessions", inJSON, notSecret},
		{"id", inJSON, notSecret}, {"value", inJSON, notSecret}, {"", inJSON, notSecret}, {"__", inForm, notSecret},
		{"refresh_interval", inJSON, notSecret}, {"access_level", inJSON, notSecret}, {"tokenizer", inJSON, notSecret},
	} {
		if got := secretName(tc.name, tc.pos); got != tc.want {
			t.Errorf("secretName(%q, %d) = %d, want %d", tc.name, tc.pos, got, tc.want)
		}
		if got := secretName([]byte(tc.name), tc.pos); got != tc.want {
			t.Errorf("secretName([]byte(%q), %d) = %d, want %d", tc.name, tc.pos, got, tc.want)
		}
	}
}

// TestRedactWeakNameEchoes: a value under a weak name (key, code, session)
// is replaced where it was found, and where it is echoed only when it
// looks like a credential: {"key":"Content-Type"} does not blank out every
// Content-Type of the session, while an API key sent as ?key= is replaced
// in the answer that echoes it.
func TestRedactWeakNameEchoes(t *testing.T) {
	s := &traces.Session{ID: "w", Exchanges: []traces.Exchange{
		{Method: "POST", URL: "/headers?key=AIzaSyA1b2C3d4E5f6", Status: 200,
			ReqBody:  traces.Body{Data: []byte(`{"key":"Content-Type","value":"application/json"}`)},
			RespBody: traces.Body{Data: []byte(`{"saved":"Content-Type","quota":"AIzaSyA1b2C3d4E5f6"}`)}},
	}}
	NewRedactor([]byte("k")).Session(s)
	ex := s.Exchanges[0]
	if strings.Contains(ex.URL, "AIzaSy") || strings.Contains(string(ex.RespBody.Data), "AIzaSy") {
		t.Errorf("the API key is left: %s %s", ex.URL, ex.RespBody.Data)
	}
	if !strings.HasPrefix(string(ex.ReqBody.Data), `{"key":"{{key:`) {
		t.Errorf("the key field kept its value: %s", ex.ReqBody.Data)
	}
	if want := `{"saved":"Content-Type","quota":"{{key:`; !strings.HasPrefix(string(ex.RespBody.Data), want) {
		t.Errorf("answer %s, want it to begin %s", ex.RespBody.Data, want)
	}
}

// TestRedactClientMadeSessionID: a session id the client made (Jupyter's
// kernel channels ?session_id=, a UUID from crypto.randomUUID(), and the
// header.session of its messages) is kept, so that replay makes each user
// its own; a UUID the server gave under a session name, and a session id
// that is not a UUID, are redacted, also where the client sends them back.
func TestRedactClientMadeSessionID(t *testing.T) {
	const (
		mine   = "0b6a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"
		given  = "7f3e2d1c-0b9a-4876-8543-210fedcba987"
		opaque = "sess-9a8b7c6d5e4f3a2b"
	)
	s := &traces.Session{ID: "j", Exchanges: []traces.Exchange{
		{Method: "GET", URL: "/api/kernels/k1/channels?session_id=" + mine, Status: 101, WebSocket: &traces.WebSocket{Frames: []traces.Frame{
			{FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`{"header":{"msg_id":"m1","session":"` + mine + `"},"content":{"code":"1+1"}}`)}},
		}}},
		{Method: "POST", URL: "/api/login", Status: 200, RespBody: traces.Body{Data: []byte(`{"session_id":"` + given + `"}`)}},
		{Method: "GET", URL: "/api/me?session_id=" + given + "&sessionId=" + opaque, Status: 200},
	}}
	NewRedactor([]byte("k")).Session(s)
	got := sessionBytes(s)
	if strings.Count(got, mine) != 2 {
		t.Errorf("the client's own session id was not kept twice:\n%s", got)
	}
	for _, secret := range []string{given, opaque} {
		if strings.Contains(got, secret) {
			t.Errorf("%s is left:\n%s", secret, got)
		}
	}
}

// TestRedactTruncatedBodyStaysTruncated: a body over --max-body keeps its
// first bytes; the secrets in them are redacted (a JSON document cut
// short included), and the placeholders, longer than the values, do not
// make the kept bytes more than the body's size, which no trace could
// carry.
func TestRedactTruncatedBodyStaysTruncated(t *testing.T) {
	whole := []byte(`{"password":"pw1","token":"t1","users":[{"password":"pw2"},{"password":"pw3"}],"note":"` + strings.Repeat("x", 100) + `"}`)
	kept := len(whole) - 4
	s := &traces.Session{ID: "t", Exchanges: []traces.Exchange{{Method: "POST", URL: "/", Status: 200,
		ReqHeader: []traces.Header{{Name: "Content-Type", Value: "application/json"}},
		ReqBody:   traces.CapBody(whole, kept)}}}
	NewRedactor([]byte("k")).Session(s)
	b := s.Exchanges[0].ReqBody
	for _, secret := range []string{`"pw1"`, `"t1"`, `"pw2"`, `"pw3"`} {
		if bytes.Contains(b.Data, []byte(secret)) {
			t.Errorf("%s left in %s", secret, b.Data)
		}
	}
	if !b.Truncated() || b.Size != int64(len(whole)) || !bytes.HasPrefix(b.Data, []byte(`{"password":"{{password:`)) {
		t.Errorf("body %q, size %d of %d bytes", b.Data, b.Size, len(whole))
	}
	w, err := traces.NewWriter(io.Discard, traces.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(s); err != nil {
		t.Fatalf("the trace refuses the redacted session: %v", err)
	}
}
