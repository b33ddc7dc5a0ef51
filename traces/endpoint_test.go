package traces_test

import (
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

func TestTemplate(t *testing.T) {
	for _, tc := range []struct {
		name, method, url, want string
	}{
		{"numeric id", "GET", "/api/projects/123/", "GET /api/projects/{id}/"},
		{"id before a format", "GET", "/docs/6.json", "GET /docs/{id}.json"},
		{"not a format", "GET", "/v/1.2", "GET /v/1.2"},
		{"a file name", "GET", "/static/app.js", "GET /static/app.js"},
		{"query dropped", "GET", "/api/projects/?page=2", "GET /api/projects/"},
		{"nested ids", "GET", "/api/import/jobs/991/steps/4", "GET /api/import/jobs/{id}/steps/{id}"},
		{"uuid", "DELETE", "/v1/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "DELETE /v1/items/{uuid}"},
		{"hex hash", "GET", "/blobs/9b74c9897bac770ffc029102a200c5de", "GET /blobs/{hash}"},
		{"token", "GET", "/share/aB3dE5fG7hJ9kL1mN3pQ5r", "GET /share/{hash}"},
		{"words kept", "GET", "/api/search/", "GET /api/search/"},
		{"short hex word kept", "GET", "/api/cafe/", "GET /api/cafe/"},
		{"long word kept", "GET", "/api/authentication-providers/", "GET /api/authentication-providers/"},
		{"absolute form", "GET", "http://127.0.0.1:8000/api/tools/?x=1", "GET /api/tools/"},
		{"absolute without path", "GET", "http://host", "GET /"},
		{"root", "GET", "/", "GET /"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := traces.Template(tc.method, tc.url); got != tc.want {
				t.Fatalf("Template(%q, %q) = %q, want %q", tc.method, tc.url, got, tc.want)
			}
		})
	}
}

func TestNamer(t *testing.T) {
	n, err := traces.NewNamer([]string{"POST /api/import/{kind}/", "GET /api/users/{name}/profile"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, url, want string }{
		{"POST", "/api/import/github/", "POST /api/import/{kind}/"},
		{"POST", "/api/import/youtube/?x=1", "POST /api/import/{kind}/"},
		{"GET", "/api/import/github/", "GET /api/import/github/"}, // another method: the template
		{"GET", "/api/users/ann/profile", "GET /api/users/{name}/profile"},
		{"GET", "/api/users/ann/profile/extra", "GET /api/users/ann/profile/extra"},
		{"GET", "/api/projects/123/", "GET /api/projects/{id}/"}, // folded as ever
	} {
		if got := n.Name(tc.method, tc.url); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.method, tc.url, got, tc.want)
		}
	}
	for _, tc := range []struct{ name, pattern, want string }{
		{"no method", "/no/method", `endpoint pattern "/no/method": want METHOD /path`},
		{"relative path", "GET api/x", "want a path beginning with /"},
		{"bad segment", "GET /api/[", `segment "[": syntax error in pattern`},
	} {
		if _, err := traces.NewNamer([]string{tc.pattern}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewNamer(%q) = %v, want an error saying %q", tc.name, tc.pattern, err, tc.want)
		}
	}
	// Added one at a time, patterns name in the order they came; none
	// names by the templates.
	var added traces.Namer
	if added.Len() != 0 || added.Name("GET", "/api/import/github/") != "GET /api/import/github/" {
		t.Errorf("the zero Namer: %d patterns, %q", added.Len(), added.Name("GET", "/api/import/github/"))
	}
	for _, p := range []string{"GET /api/{a}/x", "GET /api/{b}/{c}"} {
		if err := added.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if got := added.Name("GET", "/api/q/x"); added.Len() != 2 || got != "GET /api/{a}/x" {
		t.Errorf("added: %d patterns, %q", added.Len(), got)
	}
}

// TestEndpoint checks the names of endpoints: Template and operation, and a
// WebSocket's WS in place of its upgrade's method and back.
func TestEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name, method, url, body, want, socket string
	}{
		{"plain", "GET", "/api/items/42?page=2", "", "GET /api/items/{id}", "WS /api/items/{id}"},
		{"GraphQL operation", "POST", "/graphql", `{"operationName":"Checkout","query":"mutation Checkout { checkout { id } }"}`, "POST /graphql Checkout", "WS /graphql Checkout"},
		{"WebSocket upgrade", "GET", "ws://host/ws/chat/", "", "GET /ws/chat/", "WS /ws/chat/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &traces.Exchange{Method: tc.method, URL: tc.url, ReqBody: traces.Body{Data: []byte(tc.body)}}
			got := traces.Endpoint(ex)
			if got != tc.want {
				t.Fatalf("Endpoint = %q, want %q", got, tc.want)
			}
			socket := traces.SocketEndpoint(tc.method, got)
			if socket != tc.socket {
				t.Fatalf("SocketEndpoint(%q, %q) = %q, want %q", tc.method, got, socket, tc.socket)
			}
			if path, want := traces.SocketPath(socket), strings.TrimPrefix(got, tc.method+" "); path != want {
				t.Fatalf("SocketPath(%q) = %q, want %q", socket, path, want)
			}
			if path := traces.SocketPath(got); path != got {
				t.Fatalf("SocketPath(%q) = %q, want it as it is", got, path)
			}
		})
	}
	if got := traces.EndpointName("POST /api/import/{kind}/", ""); got != "POST /api/import/{kind}/" {
		t.Fatalf("EndpointName without an operation = %q", got)
	}
}
