package capture

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/thrive-loadtest/thrive/capture/wire"
)

// A forward proxy is what browsers, curl -x, HTTP(S)_PROXY and mobile
// devices are pointed at. Plain HTTP comes as absolute-form requests
// (GET http://host/path HTTP/1.1), each relayed to the host it names. HTTPS
// and WebSockets come as CONNECT host:port: for a host in scope the proxy
// answers 200, and then, if the client begins TLS, completes the handshake
// itself with a certificate for that host signed by its CA, and serves the
// requests inside as a reverse proxy for that one host (speaking TLS to the
// origin); a client that speaks plain HTTP inside (ws:// through a proxy) is
// served the same way without TLS. A host out of scope is tunnelled byte
// for byte and not recorded.

// upstream is where a request goes: a backend named by scheme and
// authority.
type upstream struct {
	scheme string // "http" or "https"
	host   string // the authority as a URL names it: the Host field and the trace's URLs
	addr   string // host:port to dial
}

// newUpstream makes the upstream of a scheme and an authority (host, or
// host:port); the authority loses a port that is its scheme's default.
func newUpstream(scheme, authority string) (upstream, error) {
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	host, p, err := net.SplitHostPort(authority)
	if err != nil {
		host, p = strings.Trim(authority, "[]"), port
	}
	if host == "" || strings.ContainsAny(host, " /\\@?#") {
		return upstream{}, fmt.Errorf("%q: not a host", wire.Clip(authority))
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return upstream{}, fmt.Errorf("%q: port %q is not a number", wire.Clip(authority), wire.Clip(p))
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			break
		}
	}
	if p == "" || n < 1 || n > 65535 {
		return upstream{}, fmt.Errorf("%q: port %q: want 1 to 65535", wire.Clip(authority), wire.Clip(p))
	}
	up := upstream{scheme: scheme, addr: net.JoinHostPort(host, p)}
	up.host = up.addr
	if p == port {
		up.host = host
		if strings.Contains(host, ":") {
			up.host = "[" + host + "]"
		}
	}
	return up, nil
}

// hostname is the upstream's host without its port or brackets.
func (u upstream) hostname() string {
	h, _, err := net.SplitHostPort(u.addr)
	if err != nil {
		return u.addr
	}
	return h
}

// inScope reports whether requests to host are recorded: every host when
// no WithHosts was given.
func (c *Capture) inScope(host string) bool {
	if len(c.cfg.hosts) == 0 {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	for _, p := range c.cfg.hosts {
		if rest, ok := strings.CutPrefix(p, "*"); ok {
			if strings.HasSuffix(host, rest) && len(host) > len(rest) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// route decides where a request on a forward proxy's connection goes. It
// reports whether the request is to be relayed as an exchange; when not,
// route answered it (a CONNECT, a refusal) and serve reports whether the
// connection goes on.
func (k *conn) route(h *wire.Head) (relay, keep bool) {
	c := k.c
	k.offScope = false
	if k.tunnel != nil {
		// Inside an intercepted CONNECT: every request goes to its host.
		if h.Method == "CONNECT" {
			k.plainAnswer(400, "Bad Request", "thrive capture: CONNECT inside a CONNECT tunnel\n", true)
			return false, false
		}
		k.up = *k.tunnel
		return true, true
	}
	if !c.authorized(h) {
		c.stats.proxyAuthFailures.Add(1)
		k.answer(407, "Proxy Authentication Required", c.cfg.advice.ProxyAuth,
			"Proxy-Authenticate: Basic realm=\"thrive capture\"\r\n")
		return false, false
	}
	if h.Method == "CONNECT" {
		return false, k.connect(h)
	}
	scheme, rest, ok := strings.Cut(h.Target, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		c.cfg.errorLog.Printf("capture: a request for %q from %s: a forward proxy is asked for absolute URLs", wire.Clip(h.Target), k.ip)
		k.plainAnswer(400, "Bad Request", c.cfg.advice.NotAProxy, true)
		return false, false
	}
	authority, _, _ := strings.Cut(rest, "/")
	authority, _, _ = strings.Cut(authority, "?")
	up, err := newUpstream(scheme, authority)
	if err != nil {
		k.plainAnswer(400, "Bad Request", "thrive capture: request target "+err.Error()+"\n", true)
		return false, false
	}
	k.up = up
	k.offScope = !c.inScope(up.hostname())
	return true, true
}

// authorized reports whether a request to the proxy carries the
// credentials WithProxyAuth asks for.
func (c *Capture) authorized(h *wire.Head) bool {
	if c.cfg.proxyAuth == "" {
		return true
	}
	got := wire.FieldValue(h.Fields, "Proxy-Authorization")
	scheme, cred, _ := strings.Cut(got, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return false
	}
	want := base64.StdEncoding.EncodeToString([]byte(c.cfg.proxyAuth))
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), []byte(want)) == 1
}

// answer writes a short text response of the proxy's own with more header
// lines, and closes the connection after it.
func (k *conn) answer(status int, reason, body, fields string) {
	fmt.Fprintf(k.cw, "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, reason, fields, len(body), body)
	_ = k.cw.Flush()
}

// connect serves a CONNECT: intercepted for a host in scope, tunnelled
// otherwise. It reports whether serve reads requests on from the client
// (an intercepted tunnel).
func (k *conn) connect(h *wire.Head) bool {
	c := k.c
	// The authority of the CONNECT; its scheme is known once the client
	// begins (TLS or not), and only the port's default depends on it.
	host, _, err := net.SplitHostPort(h.Target)
	if err == nil {
		_, err = newUpstream("https", h.Target)
	}
	if err != nil {
		c.cfg.errorLog.Printf("capture: CONNECT %q from %s: want host:port", wire.Clip(h.Target), k.ip)
		k.plainAnswer(400, "Bad Request", "thrive capture: CONNECT "+wire.Clip(h.Target)+": want host:port\n", true)
		return false
	}
	k.setReadDeadline(time.Time{})
	if !c.inScope(host) {
		k.tunnelThrough(h.Target)
		return false
	}
	_, _ = k.cw.WriteString("HTTP/1.1 200 Connection Established\r\n\r\n")
	if k.cw.Flush() != nil {
		return false
	}
	// What the client sends first tells TLS (a handshake record) from
	// plain HTTP (ws:// through a proxy).
	k.setReadDeadline(time.Now().Add(handshakeTimeout))
	first, err := k.cr.Peek(1)
	if err != nil {
		return false
	}
	scheme := "http"
	if first[0] == 0x16 {
		scheme = "https"
	}
	up, _ := newUpstream(scheme, h.Target)
	if scheme == "https" && !k.terminateTLS(host) {
		return false
	}
	k.setReadDeadline(time.Time{})
	k.tunnel = &up
	return true
}

// terminateTLS completes the client's TLS handshake with a certificate for
// host (or the name the client asks in SNI) and serves the connection over
// it from then on.
func (k *conn) terminateTLS(host string) bool {
	c := k.c
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// HTTP/1.1 only, so that browsers that would speak HTTP/2 fall
		// back to what the proxy records.
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := hello.ServerName
			if name == "" {
				name = host
			}
			return c.cfg.ca.Leaf(name)
		},
	}
	tc := tls.Server(&bufferedConn{Conn: k.client, r: k.cr}, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		c.stats.tlsFailures.Add(1)
		c.cfg.errorLog.Printf("capture: TLS with a client of %s from %s: %v (%s)", host, k.ip, err, c.cfg.advice.TLSRefused)
		return false
	}
	k.client = tc
	k.cr = bufio.NewReaderSize(tc, ioBufferSize)
	k.cw.Reset(tc)
	k.scheme = "https"
	return true
}

// bufferedConn reads what a bufio.Reader holds of a connection first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// tunnelThrough relays a CONNECT to a host out of scope byte for byte,
// without recording it.
func (k *conn) tunnelThrough(authority string) {
	c := k.c
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	b, err := c.netDialer.DialContext(ctx, "tcp", authority)
	cancel()
	if err != nil {
		k.plainAnswer(502, "Bad Gateway", "thrive capture: "+authority+" did not answer: "+errorKind(err)+"\n", true)
		return
	}
	k.c.connMu.Lock()
	k.backend = b
	k.c.connMu.Unlock()
	_, _ = k.cw.WriteString("HTTP/1.1 200 Connection Established\r\n\r\n")
	if k.cw.Flush() != nil {
		return
	}
	if !k.setState(stateSocket) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(k.client, b)
		k.closeAll()
	})
	_, _ = io.Copy(b, k.cr)
	k.closeAll()
	wg.Wait()
}

// writeForwardHead writes h to the origin of up as a forward proxy does:
// the request line in origin form, Host naming the origin, the client's
// fields in their order without the hop-by-hop ones and the proxy's own
// credentials.
func writeForwardHead(w *bufio.Writer, up upstream, h *wire.Head) {
	_, _ = w.WriteString(h.Method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(originForm(h.Target))
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(up.host)
	_, _ = w.WriteString("\r\n")
	for _, f := range h.Fields {
		if h.HopByHop(f.Name) || strings.EqualFold(f.Name, "Host") || strings.EqualFold(f.Name, "Proxy-Authorization") ||
			(h.Upgrade && strings.EqualFold(f.Name, "Sec-WebSocket-Extensions")) {
			continue
		}
		writeField(w, f.Name, f.Value)
	}
	if h.Chunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if h.Upgrade {
		_, _ = w.WriteString("Connection: Upgrade\r\nUpgrade: websocket\r\n")
	}
	_, _ = w.WriteString("\r\n")
}

// originForm returns the path and query of a request target in absolute
// or origin form.
func originForm(target string) string {
	if _, rest, ok := strings.Cut(target, "://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
		if i := strings.IndexByte(rest, '?'); i >= 0 {
			return "/" + rest[i:]
		}
		return "/"
	}
	if target == "" {
		return "/"
	}
	return target
}

// dialUp opens a connection to up's origin, speaking TLS to an https one
// (verified against the roots of WithTargetRoots, or the system's).
func (c *Capture) dialUp(ctx context.Context, up upstream) (net.Conn, error) {
	nc, err := c.netDialer.DialContext(ctx, "tcp", up.addr)
	if err != nil || up.scheme != "https" {
		return nc, err
	}
	tc := tls.Client(nc, &tls.Config{
		ServerName:         up.hostname(),
		NextProtos:         []string{"http/1.1"},
		RootCAs:            c.cfg.targetRoots,
		InsecureSkipVerify: c.cfg.insecureTLS, //nolint:gosec // only with WithInsecureTarget
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return tc, nil
}
