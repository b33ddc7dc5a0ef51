package capture

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

// benchSessions returns sessions as the capture hands them to the
// redactor: a JSON API visit (a login that answers a token, then calls
// that send it back with a cookie and answer about 4 KB of JSON each) and
// a multipart upload of a 64 KB file beside a few form fields.
func benchSessions() map[string]*traces.Session {
	const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	const sid = "k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8"
	item := `{"id":%d,"name":"Video summary agent %d","author":"ann","authorName":"Ann Lee","keyboard":"qwerty","status":"open","tags":["a","b","c"],"updated_at":"2025-01-02T03:04:05Z","stars":1234,"description":"` + strings.Repeat("word ", 20) + `"}`
	var list strings.Builder
	list.WriteString(`{"count":20,"next":"/api/projects/?page=2","results":[`)
	for i := range 20 {
		if i > 0 {
			list.WriteByte(',')
		}
		fmt.Fprintf(&list, item, i, i)
	}
	list.WriteString(`]}`)
	reqHead := func() []traces.Header {
		return []traces.Header{
			{Name: "Host", Value: "api.example.com"}, {Name: "User-Agent", Value: "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"},
			{Name: "Accept", Value: "application/json"}, {Name: "Accept-Encoding", Value: "gzip, deflate, br"},
			{Name: "Authorization", Value: "Bearer " + token}, {Name: "Cookie", Value: "csrftoken=Tq0Zf8W2nR4pL6kJ9hG3dS5aY7uI1oE3; sessionid=" + sid},
			{Name: "Referer", Value: "https://app.example.com/projects"}, {Name: "X-CSRFToken", Value: "Tq0Zf8W2nR4pL6kJ9hG3dS5aY7uI1oE3"},
		}
	}
	respHead := []traces.Header{
		{Name: "Content-Type", Value: "application/json"}, {Name: "Content-Length", Value: fmt.Sprint(list.Len())},
		{Name: "Date", Value: "Thu, 02 Jan 2025 03:04:05 GMT"}, {Name: "Vary", Value: "Accept, Cookie"},
		{Name: "Cache-Control", Value: "private, max-age=0"}, {Name: "X-Frame-Options", Value: "DENY"},
	}
	api := &traces.Session{ID: "api", Client: "cookie:sessionid=" + sid}
	api.Exchanges = append(api.Exchanges, traces.Exchange{
		Method: "POST", URL: "/api/auth/login/",
		ReqHeader:  []traces.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "User-Agent", Value: "Mozilla/5.0"}},
		ReqBody:    traces.Body{Data: []byte(`{"username":"ann","password":"correct horse battery staple"}`)},
		Status:     200,
		RespHeader: []traces.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "Set-Cookie", Value: "sessionid=" + sid + "; Path=/; HttpOnly"}},
		RespBody:   traces.Body{Data: []byte(`{"access_token":"` + token + `","token_type":"Bearer","expires_in":3600,"user":{"id":1,"username":"ann"}}`)},
	})
	for i := range 9 {
		api.Exchanges = append(api.Exchanges, traces.Exchange{
			Method: "GET", URL: fmt.Sprintf("/api/projects/?page=%d&ordering=-updated_at", i+1),
			ReqHeader: reqHead(), Status: 200, RespHeader: slices.Clone(respHead),
			RespBody: traces.Body{Data: []byte(list.String())},
		})
	}
	file := strings.Repeat("0123456789abcdef", 4096)
	const boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
	var mp strings.Builder
	for _, f := range [][2]string{{"csrfmiddlewaretoken", "Tq0Zf8W2nR4pL6kJ9hG3dS5aY7uI1oE3"}, {"title", "Quarterly report"}, {"description", strings.Repeat("text ", 40)}} {
		fmt.Fprintf(&mp, "--%s\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", boundary, f[0], f[1])
	}
	fmt.Fprintf(&mp, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report.csv\"\r\nContent-Type: text/csv\r\n\r\n%s\r\n--%s--\r\n", boundary, file, boundary)
	upload := &traces.Session{ID: "upload", Client: "cookie:sessionid=" + sid, Exchanges: []traces.Exchange{{
		Method: "POST", URL: "/api/projects/7/files/",
		ReqHeader: append(reqHead(), traces.Header{Name: "Content-Type", Value: "multipart/form-data; boundary=" + boundary}),
		ReqBody:   traces.Body{Data: []byte(mp.String())},
		Status:    201, RespHeader: slices.Clone(respHead),
		RespBody: traces.Body{Data: []byte(`{"id":88,"name":"report.csv","size":65536}`)},
	}}}
	return map[string]*traces.Session{"json-api": api, "multipart": upload}
}

// fresh returns a copy of s that redaction may change without changing s:
// what the capture's session builder gives the redactor. Redaction replaces
// bodies rather than writing into them, so they are shared.
func fresh(s *traces.Session) *traces.Session {
	c := *s
	c.Exchanges = slices.Clone(s.Exchanges)
	for i := range c.Exchanges {
		ex := &c.Exchanges[i]
		ex.ReqHeader, ex.RespHeader = slices.Clone(ex.ReqHeader), slices.Clone(ex.RespHeader)
	}
	return &c
}

// BenchmarkRedact redacts whole sessions, as the capture's writer does for
// every session it writes; ns/op and allocs/op are per session, copying
// its exchanges and headers included (BenchmarkRedact/copy-* alone).
//
//	go test -run XXX -bench Redact -benchmem ./capture/
func BenchmarkRedact(b *testing.B) {
	sessions := benchSessions()
	for _, name := range []string{"json-api", "multipart"} {
		s := sessions[name]
		b.Run("copy-"+name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				_ = fresh(s)
			}
		})
		b.Run(name, func(b *testing.B) {
			rd := NewRedactor([]byte("bench"))
			b.ReportAllocs()
			for range b.N {
				rd.Session(fresh(s))
			}
		})
	}
}
