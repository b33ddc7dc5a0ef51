package capture

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/internal/interrupt"
	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/traces"
)

// A Recording is a capture as thrive capture runs one: the proxy listening
// on an address (TLS with a certificate and key), saying where clients
// point, redrawing a status line while it records, and printing what it
// recorded once it stops.
type Recording struct {
	Capture *Capture
	// Sink is the capture's sink: the files it wrote are summarized.
	Sink   *FileSink
	Listen string
	// TLSCert and TLSKey, both set, make the proxy listen on TLS.
	TLSCert, TLSKey string
	// Out takes what the recording says, Warn its warnings; Status, when
	// not nil, a status line redrawn every second (a terminal).
	Out, Warn, Status io.Writer
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
	if c.forward {
		at := addr.String()
		ta, _ := addr.(*net.TCPAddr)
		if ta != nil && ta.IP.IsUnspecified() {
			at = "THIS-HOST:" + strconv.Itoa(ta.Port) // every interface: clients name one of this machine's addresses
		}
		fmt.Fprintf(r.Out, "capturing as a forward proxy at %s://%s into %s (Ctrl-C to stop); point clients at it (HTTPS_PROXY=%[1]s://%[4]s)\n", scheme, addr, r.Sink.Path, at)
		if c.cfg.proxyAuth == "" && (ta == nil || !ta.IP.IsLoopback()) {
			fmt.Fprintf(r.Warn, "warning: the proxy listens on %s beyond loopback without --proxy-auth: anyone who reaches it can use it\n", addr)
		}
	} else {
		fmt.Fprintf(r.Out, "capturing %s://%s → %s into %s (Ctrl-C to stop)\n", scheme, addr, c.target, r.Sink.Path)
	}
	if c.cfg.eventLoop && (c.forward || scheme == "https" || c.target.Scheme == "https") {
		fmt.Fprintln(r.Out, "--event-loop relays a reverse proxy's plain HTTP only: TLS and forward proxies go through the goroutine relay")
	}
}

// ParseRotate reads a FileSink's rotation: a size (100MB) or an age (1h).
func ParseRotate(s string) (every time.Duration, size int64, err error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, 0, nil
	}
	if n, err := traces.ParseBytes(s); err == nil && n > 0 {
		return 0, n, nil
	}
	return 0, 0, fmt.Errorf("rotate %q: want a size (100MB) or a duration (1h)", s)
}
