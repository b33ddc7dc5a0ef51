package apptest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Answer is an answer read whole.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request with c (http.DefaultClient if nil) and returns the
// answer; headers are name, value pairs. It fails tb on a transport error.
func Do(tb testing.TB, c *http.Client, method, url, body string, headers ...string) Answer {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	return Answer{resp.StatusCode, resp.Header, b}
}
