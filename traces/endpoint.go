package traces

import (
	"fmt"
	"strings"
)

// Template names the endpoint a request went to: its method and path, with
// the query dropped and path segments that are identifiers folded into
// placeholders, so that "GET /api/projects/123/" and "GET
// /api/projects/456/" are one endpoint, "GET /api/projects/{id}/". Numbers
// become {id}, UUIDs {uuid}, and long hexadecimal or token-like segments
// {hash}. Keeping the number of endpoints bounded is what keeps per-endpoint
// histograms affordable.
func Template(method, url string) string {
	path := url
	if i := strings.Index(path, "://"); i >= 0 {
		// Absolute form: drop scheme and authority.
		path = path[i+3:]
		if j := strings.IndexByte(path, '/'); j >= 0 {
			path = path[j:]
		} else {
			path = "/"
		}
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	var b strings.Builder
	b.Grow(len(method) + 1 + len(path))
	b.WriteString(method)
	b.WriteByte(' ')
	for i, seg := range strings.Split(path, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(fold(seg))
	}
	return b.String()
}

// EndpointName names an endpoint as reports and correlation rules do: its
// method and path template (template, as Template or a Namer gives it),
// then the GraphQL operation or JSON-RPC method the request carries, if
// any ("POST /graphql Checkout"). It is the one place that joins the two,
// so that every name of an endpoint is spelled alike.
func EndpointName(template, op string) string {
	if op == "" {
		return template
	}
	return template + " " + op
}

// Endpoint returns the EndpointName of ex: its Template and operation. A
// WebSocket's upgrade is named as the GET it is; SocketEndpoint gives the
// name reports use for the socket.
func Endpoint(ex *Exchange) string {
	return EndpointName(Template(ex.Method, ex.URL), ex.Operation())
}

// socketMethod stands in a WebSocket's endpoint name for the method of its
// upgrade request.
const socketMethod = "WS "

// SocketEndpoint names the WebSocket whose upgrade request, of method
// method, has the endpoint name name: WS in place of the method ("GET
// /ws/chat/" becomes "WS /ws/chat/"), so that reports keep a socket's
// handshake and messages apart from HTTP requests.
func SocketEndpoint(method, name string) string {
	return socketMethod + strings.TrimPrefix(name, method+" ")
}

// SocketPath returns a socket's endpoint name (SocketEndpoint's) without
// its WS, and any other name as it is: the name Locust's CSV gives beside
// a type that already says it is a WebSocket's.
func SocketPath(name string) string {
	return strings.TrimPrefix(name, socketMethod)
}

func fold(seg string) string {
	switch {
	case seg == "":
		return seg
	case isDigits(seg):
		return "{id}"
	case isUUID(seg):
		return "{uuid}"
	case isHash(seg):
		return "{hash}"
	}
	// An id before a format (Rails' /docs/6.json, /report/12.csv).
	if dot := strings.LastIndexByte(seg, '.'); dot > 0 && dot < len(seg)-1 && isDigits(seg[:dot]) && isLower(seg[dot+1:]) {
		return "{id}" + seg[dot:]
	}
	return seg
}

// isLower reports a short extension of lower-case letters and digits
// that begins with a letter (json, csv, mp4).
func isLower(s string) bool {
	if len(s) > 5 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// isHash reports whether s looks machine-made: 16 or more hexadecimal
// characters, or 20 or more characters of a token alphabet with both letters
// and digits.
func isHash(s string) bool {
	if len(s) < 16 {
		return false
	}
	hex, letters, digits := true, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			letters = true
			if !isHex(c) {
				hex = false
			}
		case c == '-' || c == '_':
			hex = false
		default:
			return false
		}
	}
	if hex && digits {
		return true
	}
	return len(s) >= 20 && letters && digits
}

// Namer names endpoints with patterns of the user's first, then Template:
// a pattern "POST /api/import/{kind}/" (a method and a path pattern, see
// MatchPath) names every request whose method is POST and whose path it
// matches, any one segment in place of {kind}.
type Namer struct {
	patterns [][2]string // method, path pattern
}

// NewNamer checks the patterns: METHOD /path/with/{placeholders}/.
func NewNamer(patterns []string) (*Namer, error) {
	n := &Namer{}
	for _, p := range patterns {
		if err := n.Add(p); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Add checks a pattern and names endpoints with it after those added
// before. The zero Namer has none: it names by Template.
func (n *Namer) Add(pattern string) error {
	method, path, ok := strings.Cut(strings.TrimSpace(pattern), " ")
	if !ok || method == "" {
		return fmt.Errorf("endpoint pattern %q: want METHOD /path, with {name} for a varying segment", pattern)
	}
	if err := CheckPathPattern(path); err != nil {
		return fmt.Errorf("endpoint pattern %q: want METHOD /path, with {name} for a varying segment: %w", pattern, err)
	}
	n.patterns = append(n.patterns, [2]string{method, path})
	return nil
}

// Len returns how many patterns n has.
func (n *Namer) Len() int {
	if n == nil {
		return 0
	}
	return len(n.patterns)
}

// Name returns the endpoint name of a request.
func (n *Namer) Name(method, url string) string {
	if n != nil {
		for _, p := range n.patterns {
			if p[0] == method && MatchPath(p[1], url) {
				return method + " " + p[1]
			}
		}
	}
	return Template(method, url)
}

// RequestURI returns the path and query of a recorded request target:
// an absolute URL loses its scheme and authority, and nothing becomes /.
func RequestURI(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		rest := url[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	if url == "" {
		return "/"
	}
	return url
}
