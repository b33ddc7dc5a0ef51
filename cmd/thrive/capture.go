package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/traces"
)

type captureFlags struct {
	listen, target, out string
	rules               string
	printRules          bool
	cookies             []string
	idle, maxSession    time.Duration
	keepSecrets         bool
	redactHeaders       []string
	maxBody, buffer     string
	rotate              string
	tlsCert, tlsKey     string
	insecureTarget      bool
	eventLoop           bool
	grace               time.Duration
	quiet               bool
	cpuProfile          string
	// A forward proxy's (no --target).
	printCA       bool
	caCert, caKey string
	hosts         []string
	proxyAuth     string
}

func newCaptureCmd() *cobra.Command {
	f := captureFlags{}
	cmd := &cobra.Command{
		Use:   "capture [--listen ADDR] [--target URL] [--out FILE]",
		Short: "Record real sessions through a proxy into a trace",
		Long: `Run a proxy and record what goes through it: every HTTP exchange and WebSocket frame,
grouped into sessions (one client's visit: its session cookie, else its credential, else
its address and User-Agent), each labelled with a profile by rules. Credentials are
replaced by stable placeholders unless --keep-secrets.

Without --target it is a forward proxy that browsers, apps and curl -x are pointed at:
plain HTTP is relayed to the host each request names, HTTPS and wss:// through CONNECT,
decrypted with certificates signed by the capture's own CA (made on first use in the
user's config directory; --print-ca prints it and how to trust it). --host limits what is
recorded; other hosts are tunnelled untouched. With --target it is a reverse proxy in
front of that one backend.

Sessions are written when they end (idle, a new login, --max-session, or when the capture
stops); finished sessions reach the file every second. Ctrl-C or SIGTERM lets requests in
flight finish, closes WebSockets, writes every open session and prints a summary.`,
		Example: "  thrive capture --listen :9000 --proxy-auth rec:secret   # a forward proxy; browsers use http://HOST:9000\n" +
			"  thrive capture --print-ca > thrive-ca.pem\n" +
			"  thrive capture --host api.example.com --host '*.example.com'\n" +
			"  thrive capture --listen 127.0.0.1:9000 --target http://127.0.0.1:8000 --out capture.thrv\n" +
			"  thrive capture --target https://staging.example --tls-cert cert.pem --tls-key key.pem --rotate 1h\n" +
			"  thrive capture --print-rules > rules.yaml",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runCapture(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9000", "address to listen on (:9000 for every interface)")
	fl.StringVar(&f.target, "target", "", "the backend's URL (http or https): a reverse proxy in front of it; without, a forward proxy")
	fl.StringVarP(&f.out, "out", "o", "capture.thrv", "the trace file to write")
	fl.StringVar(&f.rules, "rules", "", "YAML file of profile rules (see --print-rules)")
	fl.BoolVar(&f.printRules, "print-rules", false, "print the built-in profile rules as YAML and exit")
	fl.StringSliceVar(&f.cookies, "session-cookie", capture.DefaultSessionCookies(), "cookie names that key sessions")
	fl.DurationVar(&f.idle, "session-idle", 30*time.Minute, "end a session after this long without traffic")
	fl.DurationVar(&f.maxSession, "max-session", 4*time.Hour, "end a session this long after it began")
	fl.BoolVar(&f.keepSecrets, "keep-secrets", false, "record credentials as they are (no redaction)")
	fl.StringArrayVar(&f.redactHeaders, "redact-header", nil, "also redact this header's values (repeatable; headers named *-Key, *-Token, *-Secret are redacted already)")
	fl.StringVar(&f.maxBody, "max-body", "1MiB", "keep at most this much of each body (the rest: size and SHA-256)")
	fl.StringVar(&f.buffer, "buffer", "512MiB", "body bytes held for unwritten sessions before exchanges are dropped")
	fl.StringVar(&f.rotate, "rotate", "", "start a new file at this size (100MB) or age (1h)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "listen on TLS with this certificate (PEM)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "the key of --tls-cert (PEM)")
	fl.BoolVar(&f.insecureTarget, "insecure-target", false, "do not verify the certificate of an https target")
	fl.BoolVar(&f.eventLoop, "event-loop", false, "relay plain HTTP on event loops (less added latency; buffers for slow receivers)")
	fl.DurationVar(&f.grace, "grace", 10*time.Second, "on stop, time requests in flight get to finish")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no status line")
	fl.BoolVar(&f.printCA, "print-ca", false, "print the forward proxy's CA certificate (PEM) and how to trust it, and exit")
	fl.StringVar(&f.caCert, "ca-cert", "", "sign the forward proxy's certificates with this CA (PEM; default: the one in the config directory)")
	fl.StringVar(&f.caKey, "ca-key", "", "the key of --ca-cert (PEM)")
	fl.StringArrayVar(&f.hosts, "host", nil, "forward proxy: record only this host (repeatable; *.example.com for subdomains); others are tunnelled")
	fl.StringVar(&f.proxyAuth, "proxy-auth", "", "forward proxy: clients must present these Basic credentials (user:pass)")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the capture to this file (for thrive's developers)")
	_ = fl.MarkHidden("cpuprofile")
	return cmd
}

func runCapture(cmd *cobra.Command, f *captureFlags) error {
	out := cmd.OutOrStdout()
	rules := capture.DefaultRules()
	if f.rules != "" {
		rf, err := os.Open(f.rules)
		if err != nil {
			return err
		}
		rules, err = capture.ParseRules(rf)
		rf.Close()
		if err != nil {
			return usageError("%s: %v", f.rules, err)
		}
	}
	if f.printRules {
		y, err := rules.YAML()
		if err != nil {
			return err
		}
		_, err = out.Write(y)
		return err
	}
	if f.printCA {
		return printCA(out, cmd.ErrOrStderr(), f)
	}
	forward := f.target == ""
	if !forward && (len(f.hosts) > 0 || f.proxyAuth != "" || f.caCert != "" || f.caKey != "") {
		return usageError("--host, --proxy-auth, --ca-cert and --ca-key are for a forward proxy (no --target)")
	}
	maxBody, err := traces.ParseBytes(f.maxBody)
	if err != nil {
		return usageError("--max-body: %v", err)
	}
	buffer, err := traces.ParseBytes(f.buffer)
	if err != nil {
		return usageError("--buffer: %v", err)
	}
	sink := &capture.FileSink{Path: f.out}
	if f.rotate != "" {
		if d, err := time.ParseDuration(f.rotate); err == nil {
			sink.RotateEvery = d
		} else if n, err := traces.ParseBytes(f.rotate); err == nil && n > 0 {
			sink.RotateSize = n
		} else {
			return usageError("--rotate %q: want a size (100MB) or a duration (1h)", f.rotate)
		}
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usageError("--tls-cert and --tls-key go together")
	}
	opts := []capture.Option{
		capture.WithRules(rules), capture.WithSessionCookies(f.cookies...),
		capture.WithSessionIdle(f.idle), capture.WithMaxSession(f.maxSession),
		capture.WithBodyLimit(int(maxBody)), capture.WithBuffer(buffer), capture.WithGrace(f.grace),
	}
	if len(f.redactHeaders) > 0 {
		opts = append(opts, capture.WithRedactHeaders(f.redactHeaders...))
	}
	if f.keepSecrets {
		opts = append(opts, capture.WithKeepSecrets())
	}
	if f.insecureTarget {
		opts = append(opts, capture.WithInsecureTarget())
	}
	if f.eventLoop {
		opts = append(opts, capture.WithEventLoop())
	}
	if forward {
		fopts, err := forwardOptions(cmd.ErrOrStderr(), f)
		if err != nil {
			return err
		}
		opts = append(opts, fopts...)
	}
	// Open sessions' exchanges kept against a kill, beside the trace.
	opts = append(opts, capture.WithJournal(f.out+capture.JournalSuffix))
	// What the proxy itself says (bad requests, a recovered panic, a
	// journal that failed) goes to stderr.
	opts = append(opts, capture.WithErrorLog(log.New(cmd.ErrOrStderr(), "", log.LstdFlags)))
	cp, err := capture.New(f.target, sink, opts...)
	if err != nil {
		return usageError("%v", err)
	}
	if err := cp.Open(); err != nil {
		return err
	}
	ctx := cmd.Context()
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", f.listen)
	if err != nil {
		sink.Close()
		return err
	}
	scheme := "http"
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			ln.Close()
			sink.Close()
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	if forward {
		at := ln.Addr().String()
		if ta, ok := ln.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
			at = "THIS-HOST:" + strconv.Itoa(ta.Port) // every interface: clients name one of this machine's addresses
		}
		fmt.Fprintf(out, "capturing as a forward proxy at %s://%s into %s (Ctrl-C to stop); point clients at it (HTTPS_PROXY=%[1]s://%[4]s)\n", scheme, ln.Addr(), f.out, at)
		if f.proxyAuth == "" && !loopbackListen(ln.Addr()) {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: the proxy listens on %s beyond loopback without --proxy-auth: anyone who reaches it can use it\n", ln.Addr())
		}
	} else {
		fmt.Fprintf(out, "capturing %s://%s → %s into %s (Ctrl-C to stop)\n", scheme, ln.Addr(), f.target, f.out)
	}
	if f.eventLoop && (forward || scheme == "https" || strings.HasPrefix(f.target, "https:")) {
		fmt.Fprintln(out, "--event-loop relays a reverse proxy's plain HTTP only: TLS and forward proxies go through the goroutine relay")
	}

	var wg sync.WaitGroup
	statusDone := make(chan struct{})
	if tty, ok := cmd.ErrOrStderr().(*os.File); ok && !f.quiet && isTerminal(tty) {
		wg.Go(func() { statusLine(tty, cp, statusDone) })
	}
	stopProfile, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	runErr := cp.Run(ctx, ln)
	stopProfile()
	close(statusDone)
	wg.Wait()

	st := cp.Stats()
	fmt.Fprintf(out, "\ncaptured %d sessions, %d exchanges, %d WebSocket frames into %s", st.Sessions, st.Exchanges, st.Frames, strings.Join(sink.Files(), ", "))
	if st.TLSFailures > 0 {
		fmt.Fprintf(out, "; %d clients refused the capture's certificate (see --print-ca; leave pinned hosts out with --host)", st.TLSFailures)
	}
	if st.DroppedExchanges+st.DroppedSessions > 0 {
		fmt.Fprintf(out, "; dropped %d exchanges (buffer full) and %d sessions (trace not writable)", st.DroppedExchanges, st.DroppedSessions)
	}
	fmt.Fprintln(out)
	for _, path := range sink.Files() {
		if err := summarize(out, path); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return runErr
}

// summarize prints what `thrive traces inspect` prints for a file.
func summarize(w io.Writer, path string) error {
	t, err := openTrace(path)
	if err != nil {
		return err
	}
	defer t.Close()
	in, damage := traces.Inspect(t, 10)
	fmt.Fprintln(w)
	if err := in.WriteText(w); err != nil {
		return err
	}
	return damage
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// statusLine redraws one line of figures every second until done closes.
func statusLine(w io.Writer, cp *capture.Capture, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			fmt.Fprint(w, "\r\033[K")
			return
		case <-t.C:
			fmt.Fprint(w, "\r\033[K"+cp.Stats().String())
		}
	}
}

// forwardOptions are a forward proxy's: its CA (made on first use), the
// hosts in scope and the proxy's credentials.
func forwardOptions(stderr io.Writer, f *captureFlags) ([]capture.Option, error) {
	var opts []capture.Option
	if len(f.hosts) > 0 {
		opts = append(opts, capture.WithHosts(f.hosts...))
	}
	if f.proxyAuth != "" {
		user, pass, ok := strings.Cut(f.proxyAuth, ":")
		if !ok {
			return nil, usageError("--proxy-auth %q: want user:password", f.proxyAuth)
		}
		opts = append(opts, capture.WithProxyAuth(user, pass))
	}
	ca, err := loadCA(stderr, f)
	if err != nil {
		return nil, err
	}
	return append(opts, capture.WithCA(ca)), nil
}

// loadCA loads --ca-cert/--ca-key, or the CA of the config directory,
// making it on first use.
func loadCA(stderr io.Writer, f *captureFlags) (*capture.CA, error) {
	if (f.caCert == "") != (f.caKey == "") {
		return nil, usageError("--ca-cert and --ca-key go together")
	}
	if f.caCert != "" {
		return capture.LoadCA(f.caCert, f.caKey)
	}
	dir, err := capture.DefaultCADir()
	if err != nil {
		return nil, err
	}
	ca, created, err := capture.LoadOrCreateCA(dir)
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(stderr, "made a new CA for the forward proxy in %s; clients must trust it to be recorded over HTTPS: thrive capture --print-ca\n", dir)
	}
	return ca, nil
}

// printCA prints the CA's certificate, and to stderr the ways to trust it,
// so that stdout is a PEM file.
func printCA(out, stderr io.Writer, f *captureFlags) error {
	ca, err := loadCA(io.Discard, f)
	if err != nil {
		return err
	}
	path := f.caCert
	if path == "" {
		dir, err := capture.DefaultCADir()
		if err != nil {
			return err
		}
		path = filepath.Join(dir, capture.CACertFile)
	}
	if _, err := out.Write(ca.PEM()); err != nil {
		return err
	}
	_, err = io.WriteString(stderr, capture.TrustHelp(path))
	return err
}

// loopbackListen reports whether a listener's address is loopback only.
func loopbackListen(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
