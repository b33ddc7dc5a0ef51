package capture_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/traces"
)

// origins is a test CA for origin servers, standing for the public roots
// a capture verifies real sites against.
type origins struct {
	ca    *capture.CA
	roots *x509.CertPool
}

func newOrigins(t *testing.T) *origins {
	t.Helper()
	ca, _, err := capture.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	return &origins{ca: ca, roots: roots}
}

// counter is a server's own count of what it answered, by method and path.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// serveTLS serves h over TLS on addr (host:0) with a certificate for host
// from the origins' CA.
func (o *origins) serveTLS(t *testing.T, addr, host string, h http.Handler) string {
	return apptest.ServeTLS(t, o.ca, addr, host, h)
}

// echoApp counts each request and answers its path; /ws upgrades to a
// WebSocket that answers each message with "echo: " and the message.
func echoApp(c *counter) http.Handler {
	up := websocket.Upgrader{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.add(r.Method + " " + r.URL.Path)
		if r.URL.Path == "/ws" {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			for {
				mt, m, err := ws.ReadMessage()
				if err != nil {
					return
				}
				c.add("message")
				if ws.WriteMessage(mt, append([]byte("echo: "), m...)) != nil {
					return
				}
			}
		}
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "host "+r.Host+" path "+r.URL.Path)
	})
}

// startForward runs a forward-proxy capture whose CA the returned client
// trusts.
func startForward(t *testing.T, o *origins, opts ...capture.Option) (*proxy, *capture.CA) {
	t.Helper()
	ca, _, err := capture.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return startProxy(t, "", append([]capture.Option{capture.WithCA(ca), capture.WithTargetRoots(o.roots)}, opts...)...), ca
}

// proxiedClient is an HTTP client pointed at the proxy, trusting roots.
func proxiedClient(proxyURL string, roots *x509.CertPool) *http.Client {
	u, _ := url.Parse(proxyURL)
	return &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(u),
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// fails asks u through c and returns the error, if any; an answer's body
// is closed.
func fails(c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func urls(ss []*traces.Session) []string {
	var out []string
	for _, s := range ss {
		for _, ex := range s.Exchanges {
			out = append(out, ex.Method+" "+ex.URL)
		}
	}
	return out
}

// TestForwardProxyRecordsEveryHost points clients at a capture with no
// target: plain HTTP in absolute form, HTTPS through CONNECT on two hosts
// (a name and an IP address), a wss:// WebSocket and a ws:// one (CONNECT
// then plain HTTP), each exchange recorded with its scheme and host.
func TestForwardProxyRecordsEveryHost(t *testing.T) {
	o := newOrigins(t)
	var appN, apiN, plainN counter
	app := o.serveTLS(t, "127.0.0.1:0", "localhost", echoApp(&appN))
	api := o.serveTLS(t, "127.0.0.2:0", "127.0.0.2", echoApp(&apiN))
	plain := httptest.NewServer(echoApp(&plainN))
	defer plain.Close()
	p, ca := startForward(t, o)
	trust := x509.NewCertPool()
	trust.AddCert(ca.Certificate())
	client := proxiedClient(p.URL, trust)

	appURL := "https://localhost:" + port(app)
	cases := []struct{ url, want string }{
		{appURL + "/", "host localhost:" + port(app) + " path /"},
		{appURL + "/page?x=1", "host localhost:" + port(app) + " path /page"},
		{api + "/api/items", "host " + strings.TrimPrefix(api, "https://") + " path /api/items"},
		{plain.URL + "/plain", "host " + strings.TrimPrefix(plain.URL, "http://") + " path /plain"},
	}
	for _, tc := range cases {
		if code, body := get(t, client, tc.url); code != 200 || body != tc.want {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.url, code, body, tc.want)
		}
	}
	if code, _ := get(t, client, appURL+"/favicon.ico"); code != 404 {
		t.Errorf("favicon: %d, want the origin's 404", code)
	}
	pu, _ := url.Parse(p.URL)
	for _, base := range []string{"wss://" + strings.TrimPrefix(api, "https://"), "ws://" + strings.TrimPrefix(plain.URL, "http://")} {
		d := websocket.Dialer{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: trust}}
		ws, resp, err := d.Dial(base+"/ws", nil)
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		resp.Body.Close()
		for _, m := range []string{"one", "two"} {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatal(err)
			}
			if _, got, err := ws.ReadMessage(); err != nil || string(got) != "echo: "+m {
				t.Fatalf("%s: %q, %v", base, got, err)
			}
		}
		ws.Close()
	}
	ss := p.stop()

	// The origins' own counts: everything reached them once.
	if appN.get("GET /") != 1 || appN.get("GET /page") != 1 || appN.get("GET /favicon.ico") != 1 || apiN.get("GET /api/items") != 1 || plainN.get("GET /plain") != 1 {
		t.Errorf("origins saw app %v, api %v, plain %v", appN.n, apiN.n, plainN.n)
	}
	if apiN.get("message") != 2 || plainN.get("message") != 2 {
		t.Errorf("messages answered: api %d, plain %d, want 2 each", apiN.get("message"), plainN.get("message"))
	}
	got := strings.Join(urls(ss), "\n")
	for _, want := range []string{
		"GET " + appURL + "/", "GET " + appURL + "/page?x=1", "GET " + appURL + "/favicon.ico",
		"GET " + api + "/api/items", "GET " + plain.URL + "/plain",
		"GET " + api + "/ws", "GET " + plain.URL + "/ws",
	} {
		if !strings.Contains(got+"\n", want+"\n") {
			t.Errorf("the trace lacks %q; it has\n%s", want, got)
		}
	}
	var frames, statuses int
	for _, s := range ss {
		for _, ex := range s.Exchanges {
			if ex.WebSocket != nil {
				frames += len(ex.WebSocket.Frames)
			}
			if strings.HasSuffix(ex.URL, "/favicon.ico") && ex.Status == 404 {
				statuses++
			}
			if h := ex.Host; !strings.Contains(ex.URL, "://"+h+"/") {
				t.Errorf("%s recorded with Host %q", ex.URL, h)
			}
		}
	}
	if frames < 8 || statuses != 1 {
		t.Errorf("frames %d (want 8: 4 messages each way... at least), 404s recorded %d", frames, statuses)
	}
	if st := p.cp.Stats(); st.TLSFailures != 0 || st.BackendErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func port(u string) string {
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://"))
	return p
}

// TestForwardProxyScopeTrustAndAuth: a client that does not trust the CA
// gets a TLS error and nothing is recorded; a host out of scope is
// tunnelled untouched (the client sees the origin's own certificate) and
// not recorded; --proxy-auth refuses a client without credentials.
func TestForwardProxyScopeTrustAndAuth(t *testing.T) {
	o := newOrigins(t)
	var inN, outN counter
	in := o.serveTLS(t, "127.0.0.1:0", "localhost", echoApp(&inN))
	out := o.serveTLS(t, "127.0.0.2:0", "127.0.0.2", echoApp(&outN))
	p, ca := startForward(t, o, capture.WithHosts("LOCALHOST"), capture.WithProxyAuth("rec", "s3cret"))
	trust := x509.NewCertPool()
	trust.AddCert(ca.Certificate())
	inURL := "https://localhost:" + port(in)

	// Without credentials: 407, for CONNECT and plain requests alike.
	if err := fails(proxiedClient(p.URL, trust), inURL+"/"); err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
		t.Errorf("CONNECT without credentials: %v, want a 407", err)
	}
	withAuth := strings.Replace(p.URL, "http://", "http://rec:s3cret@", 1)
	wrong := strings.Replace(p.URL, "http://", "http://rec:nope@", 1)
	if err := fails(proxiedClient(wrong, trust), inURL+"/"); err == nil {
		t.Error("CONNECT with a wrong password went through")
	}

	// A client that does not trust the CA.
	if err := fails(proxiedClient(withAuth, o.roots), inURL+"/untrusted"); err == nil || !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Errorf("a client without the CA: %v, want a certificate verification error", err)
	}

	// In scope, trusted: recorded.
	if code, _ := get(t, proxiedClient(withAuth, trust), inURL+"/in"); code != 200 {
		t.Errorf("in scope: %d", code)
	}
	// Out of scope: tunnelled, so the origin's certificate reaches the
	// client, which trusts the origins' CA and not the capture's.
	if code, _ := get(t, proxiedClient(withAuth, o.roots), out+"/out"); code != 200 {
		t.Errorf("out of scope: %d", code)
	}
	if err := fails(proxiedClient(withAuth, trust), out+"/out-again"); err == nil {
		t.Error("out of scope, the client saw a certificate of the capture's CA")
	}
	ss := p.stop()
	got := urls(ss)
	if len(got) != 1 || got[0] != "GET "+inURL+"/in" {
		t.Errorf("recorded %q, want only GET %s/in", got, inURL)
	}
	for _, s := range ss {
		for _, ex := range s.Exchanges {
			for _, h := range ex.ReqHeader {
				if strings.EqualFold(h.Name, "Proxy-Authorization") {
					t.Errorf("the proxy's credentials reached the trace: %v", h)
				}
			}
		}
	}
	if inN.get("GET /untrusted") != 0 || inN.get("GET /in") != 1 || outN.get("GET /out") != 1 || outN.get("GET /out-again") != 0 {
		t.Errorf("origins saw in %v, out %v", inN.n, outN.n)
	}
	st := p.cp.Stats()
	if st.TLSFailures != 1 || st.ProxyAuthFailures < 2 {
		t.Errorf("TLS failures %d (want 1: the client without the CA), 407s %d (want 2 at least)", st.TLSFailures, st.ProxyAuthFailures)
	}
}

// TestForwardProxyBadInput: a CONNECT to a closed port, an origin with an
// expired certificate, a client that closes mid-handshake and malformed
// CONNECT lines get clear answers, the failures with an origin are
// recorded per exchange, and the proxy goes on serving.
func TestForwardProxyBadInput(t *testing.T) {
	o := newOrigins(t)
	var goodN counter
	good := o.serveTLS(t, "127.0.0.1:0", "127.0.0.1", echoApp(&goodN))
	expired := expiredOrigin(t)
	roots := o.roots.Clone()
	roots.AddCert(expired.cert)
	p, ca := startForward(t, o, capture.WithTargetRoots(roots))
	trust := x509.NewCertPool()
	trust.AddCert(ca.Certificate())
	client := proxiedClient(p.URL, trust)

	closed := closedPort(t)
	if code, body := get(t, client, "https://"+closed+"/x"); code != 502 || !strings.Contains(body, "connection refused") {
		t.Errorf("closed port: %d %q", code, body)
	}
	if code, body := get(t, client, expired.url+"/y"); code != 502 || !strings.Contains(body, "expired") {
		t.Errorf("expired certificate: %d %q", code, body)
	}
	// A client that sends half a ClientHello and leaves.
	raw := dialRaw(t, p.URL)
	raw.send("CONNECT 127.0.0.1:" + port(good) + " HTTP/1.1\r\nHost: x\r\n\r\n")
	// A CONNECT's answer has no body: read its head by hand.
	if line, err := raw.br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200 ") {
		t.Errorf("CONNECT: %q, %v", line, err)
	}
	if line, _ := raw.br.ReadString('\n'); line != "\r\n" {
		t.Errorf("CONNECT answer: %q after the status line", line)
	}
	raw.send("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
	raw.c.Close()
	for _, line := range []string{
		"CONNECT nohost HTTP/1.1", "CONNECT 127.0.0.1:99999 HTTP/1.1", "CONNECT :443 HTTP/1.1",
		"CONNECT a b:1 HTTP/1.1", "GET /relative HTTP/1.1",
	} {
		r := dialRaw(t, p.URL)
		r.send(line + "\r\nHost: x\r\n\r\n")
		a, body := r.response("GET")
		if a.StatusCode != 400 || !strings.Contains(body, "thrive capture") {
			t.Errorf("%q: %d %q, want a 400 that says why", line, a.StatusCode, body)
		}
	}
	// Still serving.
	if code, _ := get(t, client, good+"/after"); code != 200 || goodN.get("GET /after") != 1 {
		t.Errorf("after the bad input: %d, origin saw %v", code, goodN.n)
	}
	ss := p.stop()
	errs := map[string]string{}
	for _, s := range ss {
		for _, ex := range s.Exchanges {
			errs[ex.URL] = ex.Error
		}
	}
	if e := errs["https://"+closed+"/x"]; e != "backend: connection refused" {
		t.Errorf("closed port recorded with %q", e)
	}
	if e := errs[expired.url+"/y"]; !strings.Contains(e, "expired") {
		t.Errorf("expired certificate recorded with %q", e)
	}
	if _, ok := errs[good+"/after"]; !ok || len(errs) != 3 {
		t.Errorf("recorded %v", errs)
	}
}

func closedPort(t *testing.T) string {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type expiredServer struct {
	url  string
	cert *x509.Certificate
}

// expiredOrigin serves TLS with a self-signed certificate that expired
// yesterday.
func expiredOrigin(t *testing.T) expiredServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "expired"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "stale") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return expiredServer{url: srv.URL, cert: cert}
}

// TestForwardCAKeptAndReloaded: the CA made on first use is kept with a
// key only its user may read, and loaded again the next time; a leaf
// names the host asked, as a name or an IP address.
func TestForwardCAKeptAndReloaded(t *testing.T) {
	dir := t.TempDir() + "/thrive"
	ca, created, err := capture.LoadOrCreateCA(dir)
	if err != nil || !created {
		t.Fatalf("first use: created %v, %v", created, err)
	}
	again, created, err := capture.LoadOrCreateCA(dir)
	if err != nil || created || !again.Certificate().Equal(ca.Certificate()) {
		t.Fatalf("second use: created %v, same %v, %v", created, err == nil && again.Certificate().Equal(ca.Certificate()), err)
	}
	fi, err := statMode(dir + "/" + capture.CAKeyFile)
	if err != nil || fi != 0o600 {
		t.Errorf("key mode %o, %v; want 600", fi, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	for _, host := range []string{"api.example.test", "127.0.0.2", "::1"} {
		leaf, err := ca.Leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("leaf for %s: %v", host, err)
		}
		if again, _ := ca.Leaf(host); again != leaf {
			t.Errorf("leaf for %s made twice", host)
		}
	}
	if _, err := capture.LoadCA(dir+"/"+capture.CACertFile, dir+"/missing.pem"); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("a missing key: %v", err)
	}
	if _, err := capture.New("", &capture.FileSink{Path: t.TempDir() + "/x.thrv"}); err == nil || !strings.Contains(err.Error(), "CA") {
		t.Errorf("a forward proxy without a CA: %v", err)
	}
}

func statMode(path string) (os.FileMode, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), nil
}
