package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/internal/interrupt"
	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/traces"
)

// A Recording is a capture as thrive capture runs one: the proxy listening
// on an address (TLS with a certificate and key), saying where clients
// point, redrawing a status line while it records, and printing what it
// recorded once it stops.
type Recording struct {
	Capture *capture.Capture
	// Sink is the capture's sink: the files it wrote are summarized.
	Sink   *capture.FileSink
	Listen string
	// TLSCert and TLSKey, both set, make the proxy listen on TLS.
	TLSCert, TLSKey string
	// Out takes what the recording says, Warn its warnings; Status, when
	// not nil, a status line redrawn every second (a terminal).
	Out, Warn, Status io.Writer
}

// Advice is what a forward proxy tells its clients and its log, in the
// command line's words (capture.WithAdvice).
func Advice() capture.Advice {
	return capture.Advice{
		ProxyAuth: "thrive capture: proxy authentication required (--proxy-auth)\n",
		NotAProxy: "thrive capture: this is a forward proxy (no --target): ask for absolute URLs, as of a proxy (curl -x), " +
			"or run the capture with --target to put it in front of one backend\n",
		TLSRefused: "does the client trust the capture's CA? see thrive capture --print-ca; a client that pins its certificates can be left out of --host",
	}
}

// Run records until ctx ends (Capture.Run), then prints the figures and
// the summary of each file written (traces inspect's).
func (r *Recording) Run(ctx context.Context) error {
	c := r.Capture
	if err := c.Open(); err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", r.Listen)
	if err != nil {
		r.Sink.Close()
		return err
	}
	scheme := "http"
	if r.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(r.TLSCert, r.TLSKey)
		if err != nil {
			ln.Close()
			r.Sink.Close()
			return fmt.Errorf("the listener's certificate: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	r.announce(ln.Addr(), scheme)
	stopStatus := statusline.Start(r.Status, func() string { return c.Stats().String() })
	runErr := c.Run(ctx, ln)
	stopStatus()

	st := c.Stats()
	fmt.Fprintf(r.Out, "\ncaptured %d sessions, %d exchanges, %d WebSocket frames into %s", st.Sessions, st.Exchanges, st.Frames, strings.Join(r.Sink.Files(), ", "))
	if st.Strays > 0 {
		fmt.Fprintf(r.Out, "; %d sub-resource requests no visit claimed, kept apart (not replayed)", st.Strays)
	}
	if st.EndedEarly > 0 {
		fmt.Fprintf(r.Out, "; %s", endedEarly(st.EndedEarly))
	}
	if st.TLSFailures > 0 {
		fmt.Fprintf(r.Out, "; %d clients refused the capture's certificate (see --print-ca; leave pinned hosts out with --host)", st.TLSFailures)
	}
	if st.DroppedExchanges+st.DroppedSessions > 0 {
		fmt.Fprintf(r.Out, "; dropped %d exchanges (buffer full) and %d sessions (trace not writable)", st.DroppedExchanges, st.DroppedSessions)
	}
	fmt.Fprintln(r.Out)
	for _, path := range r.Sink.Files() {
		runErr = errors.Join(runErr, WriteSummary(r.Out, path))
	}
	if cause := context.Cause(ctx); runErr == nil && cause != nil {
		if _, bySignal := interrupt.ExitCode(cause); bySignal {
			// Stopped by a signal, everything written: the error says
			// which, for the exit code (130, 143, 129).
			return fmt.Errorf("capture %w: every session captured is written", cause)
		}
	}
	return runErr
}

// endedEarly says that n sessions ended before their idle time for memory.
func endedEarly(n int64) string {
	return fmt.Sprintf("%d sessions quiet for a minute ended before their idle time, the buffer half full (--buffer); a client that came back continues in a new one", n)
}

// WriteSummary prints, after a blank line, what thrive traces inspect
// prints of the trace at path, and returns the file's damage.
func WriteSummary(w io.Writer, path string) error {
	in, err := traces.InspectFile(path, 10)
	if in == nil {
		return err
	}
	fmt.Fprintln(w)
	return errors.Join(in.WriteText(w), err)
}

// announce says where the proxy listens and records to: a forward proxy
// also how clients point at it, and a warning when anyone beyond loopback
// could use it without credentials.
func (r *Recording) announce(addr net.Addr, scheme string) {
	c := r.Capture
	if c.Forward() {
		at := addr.String()
		ta, _ := addr.(*net.TCPAddr)
		if ta != nil && ta.IP.IsUnspecified() {
			at = "THIS-HOST:" + strconv.Itoa(ta.Port) // every interface: clients name one of this machine's addresses
		}
		fmt.Fprintf(r.Out, "capturing as a forward proxy at %s://%s into %s (Ctrl-C to stop); point clients at it (HTTPS_PROXY=%[1]s://%[4]s)\n", scheme, addr, r.Sink.Path, at)
		if !c.ProxyAuth() && (ta == nil || !ta.IP.IsLoopback()) {
			fmt.Fprintf(r.Warn, "warning: the proxy listens on %s beyond loopback without --proxy-auth: anyone who reaches it can use it\n", addr)
		}
	} else {
		fmt.Fprintf(r.Out, "capturing %s://%s → %s into %s (Ctrl-C to stop)\n", scheme, addr, c.Target(), r.Sink.Path)
	}
	if c.EventLoop() && (c.Forward() || scheme == "https" || c.Target().Scheme == "https") {
		fmt.Fprintln(r.Out, "--event-loop relays a reverse proxy's plain HTTP only: TLS and forward proxies go through the goroutine relay")
	}
}

// WriteCA writes the PEM of the CA capture.OpenCA(certFile, keyFile)
// returns to out, and to help the ways to trust it (TrustHelp), so that
// out can be a PEM file.
func WriteCA(out, help io.Writer, certFile, keyFile string) error {
	ca, path, err := capture.OpenCA(certFile, keyFile, io.Discard)
	if err != nil {
		return err
	}
	if _, err := out.Write(ca.PEM()); err != nil {
		return err
	}
	_, err = io.WriteString(help, TrustHelp(path))
	return err
}

// TrustHelp says how to make clients trust the CA whose certificate is at
// certPath: the system store, NSS (Firefox, Chromium on Linux), macOS and
// Android.
func TrustHelp(certPath string) string {
	return fmt.Sprintf(`# Trust this CA only on machines and browsers you record with; its key signs for any host.
# Debian/Ubuntu system store (curl, Go, Python):
sudo cp %[1]s /usr/local/share/ca-certificates/thrive-capture.crt && sudo update-ca-certificates
# Fedora/RHEL: sudo cp %[1]s /etc/pki/ca-trust/source/anchors/ && sudo update-ca-trust
# Chromium and Firefox on Linux (NSS; certutil is in libnss3-tools):
certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n "thrive capture" -i %[1]s
# macOS keychain:
sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %[1]s
# Android: Settings > Security > Encryption & credentials > Install a certificate > CA certificate, pick %[1]s
# (apps trust user CAs only when their network security config allows it)
# One command: curl --cacert %[1]s -x http://127.0.0.1:9000 https://example.test/
`, certPath)
}
