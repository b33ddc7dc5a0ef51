package main

import (
	"errors"
	"log"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/internal/app"
	"github.com/thrive-loadtest/thrive/internal/statusline"
)

// captureFlags are capture's flags: most are the Recording's fields and
// the capture's options in place.
type captureFlags struct {
	rec                     app.Recording
	sink                    capture.FileSink
	target, cpuProfile      string
	opts                    []capture.Option
	rules                   *capture.Rules
	cookies, hosts          []string // hosts: a forward proxy's scope, or a passive capture's servers
	idle, maxSession, grace time.Duration
	maxBody, buffer         int64
	printRules, quiet       bool
	// A forward proxy's (no --target).
	printCA       bool
	caCert, caKey string
	// A passive capture's (--interface).
	live app.Import
	face string
}

func newCaptureCmd() *cobra.Command {
	f := captureFlags{}
	cmd := &cobra.Command{
		Use:   "capture [--listen ADDR] [--target URL] [--out FILE] | --interface NAME --port N",
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
front of that one backend. With --interface it is no proxy: it watches the packets of
the HTTP servers on --port on that interface (Linux, CAP_NET_RAW) and records the same.

Sessions are written when they end (idle, a new login, --max-session, or when the capture
stops); finished sessions reach the file every second. Ctrl-C or SIGTERM lets requests in
flight finish, closes WebSockets, writes every open session and prints a summary.`,
		Example: "  thrive capture --listen :9000 --proxy-auth rec:secret   # a forward proxy; browsers use http://HOST:9000\n" +
			"  thrive capture --print-ca > thrive-ca.pem\n" +
			"  thrive capture --host api.example.com --host '*.example.com'\n" +
			"  thrive capture --listen 127.0.0.1:9000 --target http://127.0.0.1:8000 --out capture.thrv\n" +
			"  thrive capture --target https://staging.example --tls-cert cert.pem --tls-key key.pem --rotate 1h\n" +
			"  thrive capture --print-rules > rules.yaml\n  sudo thrive capture --interface eth0 --port 8000",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runCapture(cmd, &f) },
	}
	fl, opts := cmd.Flags(), &f.opts
	fl.StringVar(&f.rec.Listen, "listen", "127.0.0.1:9000", "address to listen on (:9000 for every interface)")
	fl.StringVar(&f.target, "target", "", "the backend's URL (http or https): a reverse proxy in front of it; without, a forward proxy")
	sessionFlags(fl, &f)
	fl.BoolVar(&f.printRules, "print-rules", false, "print the built-in profile rules as YAML and exit")
	fl.Func("rotate", "start a new file at this `size` (100MB) or age (1h)", func(s string) (err error) {
		f.sink.RotateEvery, f.sink.RotateSize, err = capture.ParseRotate(s)
		return err
	})
	fl.StringVar(&f.rec.TLSCert, "tls-cert", "", "listen on TLS with this certificate (PEM)")
	fl.StringVar(&f.rec.TLSKey, "tls-key", "", "the key of --tls-cert (PEM)")
	optionFlag(fl, opts, "insecure-target", "do not verify the certificate of an https target", capture.WithInsecureTarget())
	parsedFlag(fl, opts, "host-header", "which `Host` the target sees: client (the proxy's name, Origin and Referer as sent), target (its own; Origin and Referer rewritten), auto (client for a target on this machine)", func(s string) (capture.Option, error) {
		h, err := capture.ParseHostHeader(s)
		return capture.WithHostHeader(h), err
	})
	optionFlag(fl, opts, "event-loop", "relay plain HTTP on event loops (less added latency; buffers for slow receivers)", capture.WithEventLoop())
	fl.DurationVar(&f.grace, "grace", 10*time.Second, "on stop, time requests in flight get to finish")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no status line")
	fl.BoolVar(&f.printCA, "print-ca", false, "print the forward proxy's CA certificate (PEM) and how to trust it, and exit")
	fl.StringVar(&f.caCert, "ca-cert", "", "sign the forward proxy's certificates with this CA (PEM; default: the one in the config directory)")
	fl.StringVar(&f.caKey, "ca-key", "", "the key of --ca-cert (PEM)")
	fl.StringArrayVar(&f.hosts, "host", nil, "forward proxy: record only this host (repeatable; *.example.com for subdomains); others are tunnelled; --interface: this server's IP")
	fl.StringVar(&f.face, "interface", "", "record the packets on this network `interface` (no proxy): the servers on --port")
	fl.IntSliceVar(&f.live.Ports, "port", nil, "--interface: the HTTP servers' `port` (repeatable; default 80)")
	parsedFlag(fl, opts, "proxy-auth", "forward proxy: clients must present these Basic `credentials` (user:pass)", func(s string) (capture.Option, error) {
		user, pass, ok := strings.Cut(s, ":")
		if !ok {
			return nil, errors.New("want user:password")
		}
		return capture.WithProxyAuth(user, pass), nil
	})
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the capture to this file (for thrive's developers)")
	_ = fl.MarkHidden("cpuprofile")
	return cmd
}

// sessionFlags declares the flags of how exchanges make sessions in a
// trace, which capture and import share.
func sessionFlags(fl *pflag.FlagSet, f *captureFlags) {
	fl.StringVarP(&f.sink.Path, "out", "o", defaultTrace, "the trace file to write")
	valueFlag(fl, &f.rules, "rules", "YAML `file` of profile rules (see thrive capture --print-rules)", capture.LoadRulesFile)
	fl.StringSliceVar(&f.cookies, "session-cookie", capture.DefaultSessionCookies(), "cookie names that key sessions")
	fl.DurationVar(&f.idle, "session-idle", 30*time.Minute, "end a session after this long without traffic")
	fl.DurationVar(&f.maxSession, "max-session", 4*time.Hour, "end a session this long after it began")
	optionFlag(fl, &f.opts, "keep-secrets", "record credentials as they are (no redaction)", capture.WithKeepSecrets())
	parsedFlag(fl, &f.opts, "redact-header", "also redact this `header`'s values (repeatable; headers named *-Key, *-Token, *-Secret are redacted already)", func(h string) (capture.Option, error) {
		return capture.WithRedactHeaders(h), nil
	})
	sizeFlag(fl, &f.maxBody, "max-body", "1MiB", "keep at most this `size` of each body (the rest: size and SHA-256)")
	sizeFlag(fl, &f.buffer, "buffer", "512MiB", "the `size` of the exchanges held for unwritten sessions (bodies, headers) before some are dropped")
}

// sessionOptions returns the capture options sessionFlags set.
func (f *captureFlags) sessionOptions() []capture.Option {
	if f.rules == nil {
		f.rules = capture.DefaultRules()
	}
	return append(f.opts, capture.WithRules(f.rules), capture.WithSessionCookies(f.cookies...), capture.WithSessionIdle(f.idle),
		capture.WithMaxSession(f.maxSession), capture.WithBodyLimit(int(f.maxBody)), capture.WithBuffer(f.buffer))
}

func newImportCmd() *cobra.Command {
	f, im := captureFlags{}, app.Import{}
	cmd := &cobra.Command{
		Use:   "import FILE... [--port N] [--out FILE]",
		Short: "Make a trace of what another tool recorded: HAR files, packet captures, GoReplay files",
		Long: `Make a trace of HAR files (Chrome's, Firefox's and Playwright's, WebSocket messages
included) or of packet captures (pcap, pcapng: tcpdump, Wireshark; "-" reads standard
input) as the capture would have recorded their exchanges: grouped into sessions,
labelled by the profile rules, credentials redacted unless --keep-secrets. Several HAR
files make one trace, each a client of its own; entries the browser served from its
cache, or never sent, are left out and counted. Packets are reassembled into TCP
connections to --port, their HTTP/1.x exchanges and WebSocket frames timed by the
packets; what a gap in the capture cut is kept marked incomplete, or dropped and
counted. HTTPS cannot be read from packets: record it with the forward proxy. GoReplay
files (.gor, .gor.gz: gor --input-raw-track-response) pair each request with its response.`,
		Example: "  thrive import session.har --out trace.thrv\n  thrive import a.har b.har --rules rules.yaml\n" +
			"  thrive import capture.pcap --port 8000 --out trace.thrv\n  tcpdump -i lo -w - port 8000 | thrive import - --port 8000",
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			im.Files, im.Sink, im.Options, im.In, im.Out, im.Status = args, &f.sink, f.sessionOptions(), cmd.InOrStdin(), cmd.OutOrStdout(), statusline.Terminal(cmd.ErrOrStderr())
			stopProfile, err := app.StartCPUProfile(f.cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
			return im.Run()
		},
	}
	sessionFlags(cmd.Flags(), &f)
	cmd.Flags().StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the import to this file (for thrive's developers)")
	_ = cmd.Flags().MarkHidden("cpuprofile")
	cmd.Flags().IntSliceVar(&im.Ports, "port", nil, "a packet capture's HTTP servers' `port` (repeatable; default 80); of a GoReplay file, the ports whose exchanges to keep (default all)")
	cmd.Flags().StringArrayVar(&im.Hosts, "host", nil, "a packet capture's HTTP server's `IP` (repeatable; default any)")
	cmd.Flags().StringVar(&im.Target, "target", "", "where a packet capture's requests went, for the trace (default: the first server seen, http://IP:PORT)")
	return cmd
}

func runCapture(cmd *cobra.Command, f *captureFlags) error {
	out, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	opts := f.sessionOptions()
	if f.printRules {
		return f.rules.WriteYAML(out)
	}
	if (f.caCert == "") != (f.caKey == "") {
		return usageError("--ca-cert and --ca-key go together")
	}
	if f.printCA {
		return app.WriteCA(out, stderr, f.caCert, f.caKey)
	}
	forward := f.target == ""
	if !forward && f.caCert != "" {
		return usageError("--ca-cert and --ca-key are for a forward proxy (no --target), as --host and --proxy-auth are")
	}
	stopProfile, err := app.StartCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if f.face != "" {
		f.live.Hosts, f.live.Target, f.live.Sink, f.live.Out, f.live.Options = f.hosts, f.target, &f.sink, out, opts
		if !f.quiet {
			f.live.Status = statusline.Terminal(stderr)
		}
		return f.live.Live(cmd.Context(), f.face)
	}
	if (f.rec.TLSCert == "") != (f.rec.TLSKey == "") {
		return usageError("--tls-cert and --tls-key go together")
	}
	opts = append(opts, capture.WithGrace(f.grace),
		// Open sessions' exchanges kept against a kill, beside the trace.
		capture.WithJournal(f.sink.Path+capture.JournalSuffix),
		// What the proxy itself says (bad requests, a recovered panic, a
		// journal that failed) goes to stderr.
		capture.WithErrorLog(log.New(stderr, "", log.LstdFlags)), capture.WithHosts(f.hosts...), capture.WithAdvice(app.Advice()))
	if forward {
		ca, _, err := capture.OpenCA(f.caCert, f.caKey, stderr)
		if err != nil {
			return err
		}
		opts = append(opts, capture.WithCA(ca))
	}
	cp, err := capture.New(f.target, &f.sink, opts...)
	if err != nil {
		return usageError("%v", err)
	}
	f.rec.Capture, f.rec.Sink, f.rec.Out, f.rec.Warn = cp, &f.sink, out, stderr
	if !f.quiet {
		f.rec.Status = statusline.Terminal(stderr)
	}
	return f.rec.Run(cmd.Context())
}
