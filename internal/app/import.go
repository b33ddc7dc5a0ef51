package app

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/capture/importer"
	"github.com/thrive-loadtest/thrive/capture/passive"
	"github.com/thrive-loadtest/thrive/internal/hint"
	"github.com/thrive-loadtest/thrive/internal/interrupt"
	"github.com/thrive-loadtest/thrive/internal/statusline"
	"github.com/thrive-loadtest/thrive/traces"
)

// An Import is thrive import: files another tool recorded made into one
// trace, through the capture's sessionizer, profile rules and redaction
// (capture.Import), as if the capture had seen their exchanges. It reads
// HAR files (Chrome, Firefox, Playwright), several making one trace, their
// entries merged by time, each file a client of its own; or packet
// captures (pcap, pcapng: tcpdump, Wireshark), read in the order given as
// tcpdump -C rotates them, "-" for standard input; or GoReplay's files
// (.gor, .gor.gz), read in the order of the chunks GoReplay rotates to
// (requests_0.gor, requests_1.gor, ... requests_10.gor), each request
// paired with its response wherever the two are.
type Import struct {
	Files []string
	// Ports are a packet capture's servers' ports whose traffic is HTTP
	// (80 when none), and the ports whose exchanges a GoReplay file gives
	// (all when none); Target is where the requests went, for the trace
	// (when "", a packet capture's first server seen, as http://IP:PORT).
	Ports  []int
	Target string
	// Hosts, when not empty, are the only servers recorded (IP addresses).
	Hosts []string
	// In is read for the file "-".
	In io.Reader
	// Sink is the trace written.
	Sink *capture.FileSink
	// Options are the capture's: rules, session cookies and idle time,
	// redaction, body limit.
	Options []capture.Option
	// Out takes what the import says: what each file held and left out,
	// and the trace's summary. Status, when not nil, takes a status line
	// redrawn every second (a terminal): a live capture's figures, or an
	// import's progress through its files.
	Out, Status io.Writer

	live     bool                 // a live capture (Live), not an import of files
	progress *statusline.Progress // an import's bytes read, when Status is set
}

// Run imports the files, showing on Status the bytes read of their total
// size (of no total when one is standard input), the rate and the time
// left. Exchanges read before a damaged file's damage are imported, and
// the damage is the error; the trace is written either way.
func (im *Import) Run() error {
	var stop func()
	im.progress, stop = showProgress(im.Status, FilesSize(im.Files))
	defer stop()
	if slices.ContainsFunc(im.Files, isGor) {
		if slices.ContainsFunc(im.Files, func(p string) bool { return !isGor(p) }) {
			return errors.New("import: GoReplay files go in imports of their own")
		}
		return im.gor()
	}
	if slices.ContainsFunc(im.Files, isPackets) {
		if !slices.ContainsFunc(im.Files, isHAR) {
			return im.packets()
		}
		return errors.New("import: HAR files and packet captures go in imports of their own")
	}
	var seen []importer.Seen
	var client []string // each exchange's file: the client it came from
	var readErr error
	for _, path := range im.Files {
		got, err := im.read(path)
		readErr = errors.Join(readErr, err)
		seen = append(seen, got...)
		for range got {
			client = append(client, filepath.Base(path))
		}
	}
	order := make([]int, len(seen))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return seen[a].Start.Compare(seen[b].Start) })
	imp, err := capture.NewImport("har", "", im.Sink, im.Options...)
	if err != nil {
		return errors.Join(readErr, err)
	}
	for _, i := range order {
		s := &seen[i]
		imp.Add(s.Start, client[i]+" "+s.Conn, client[i], &s.Exchange)
	}
	return errors.Join(readErr, im.close(imp))
}

// FilesSize returns the bytes of the files at paths together, or 0 when
// one is standard input ("-") or cannot be read: a total not known.
func FilesSize(paths []string) int64 {
	var n int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if p == "-" || err != nil || !fi.Mode().IsRegular() {
			return 0
		}
		n += fi.Size()
	}
	return n
}

// counted returns r counted into the import's progress, if it shows one.
func (im *Import) counted(r io.Reader) io.Reader {
	if im.progress == nil {
		return r
	}
	return im.progress.Reader(r)
}

// close ends imp and says what the trace holds.
func (im *Import) close(imp *capture.Import) error {
	err := imp.Close()
	st := imp.Stats()
	verb := "imported"
	if im.live {
		verb = "captured"
	}
	fmt.Fprintf(im.Out, "%s %d sessions, %d exchanges, %d WebSocket frames into %s\n", verb, st.Sessions, st.Exchanges, st.Frames, im.Sink.Path)
	if st.EndedEarly > 0 {
		fmt.Fprintln(im.Out, endedEarly(st.EndedEarly))
	}
	if st.DroppedExchanges > 0 {
		writeWarning(im.Out, fmt.Sprintf("%d exchanges dropped: the buffer was full", st.DroppedExchanges), "a larger --buffer")
	}
	if err == nil {
		err = WriteSummary(im.Out, im.Sink.Path)
	}
	return err
}

// isHAR and isPackets tell a file's kind by its name.
func isHAR(path string) bool { return strings.EqualFold(filepath.Ext(path), ".har") }
func isPackets(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".pcap", ".pcapng", ".cap", ".dmp":
		return true
	}
	return path == "-"
}

// packets imports packet captures, each exchange as it ends, the import's
// clock the packets' time: memory holds the open connections, not the
// file.
func (im *Import) packets() error {
	lz := &lazyImport{im: im, source: "pcap"}
	rd := passive.NewReader(passive.Filter{Ports: im.Ports, Hosts: im.Hosts}, lz.add)
	var readErr error
	for _, path := range im.Files {
		readErr = errors.Join(readErr, im.readPackets(rd, path, lz.advance))
	}
	where := strings.Join(im.Files, ", ")
	im.writeStats(where, rd.Close())
	return lz.close(readErr, where)
}

// A lazyImport is the capture.Import of packets, opened with the first
// exchange: the trace's target, unless given, is the first server seen.
type lazyImport struct {
	im      *Import
	source  string
	imp     atomic.Pointer[capture.Import] // read by a status line
	openErr error
}

// add hands an exchange to the import, opening it first.
func (lz *lazyImport) add(start time.Time, conn, client string, ex *traces.Exchange) {
	imp := lz.imp.Load()
	if imp == nil && lz.openErr == nil {
		target := lz.im.Target
		if _, server, ok := strings.Cut(conn, ">"); ok && target == "" {
			target = "http://" + server
		}
		imp, lz.openErr = capture.NewImport(lz.source, target, lz.im.Sink, lz.im.Options...)
		lz.imp.Store(imp)
	}
	if imp != nil {
		imp.Add(start, conn, client, ex)
	}
}

// advance moves the import's clock.
func (lz *lazyImport) advance(t time.Time) {
	if imp := lz.imp.Load(); imp != nil {
		imp.Advance(t)
	}
}

// close ends the import and says what the trace holds; with nothing to
// import from where (the files, the interface), it says so.
func (lz *lazyImport) close(readErr error, where string) error {
	imp := lz.imp.Load()
	if imp == nil {
		ports := lz.im.Ports
		if len(ports) == 0 {
			ports = []int{80}
		}
		return errors.Join(readErr, lz.openErr, fmt.Errorf("import: no HTTP exchange to or from ports %v in %s", ports, where))
	}
	return errors.Join(readErr, lz.im.close(imp))
}

// status is the status line of a live capture: the trace's figures and
// the packets' (read, dropped by the kernel).
func (lz *lazyImport) status(h *passive.Interface, read *atomic.Pointer[passive.Stats]) string {
	line := "open 0 · written 0 sessions"
	if imp := lz.imp.Load(); imp != nil {
		line = imp.Stats().String()
	}
	_, drops := h.Kernel()
	st := read.Load()
	if st == nil {
		st = &passive.Stats{}
	}
	return fmt.Sprintf("%s · %d packets, %d exchanges, %d incomplete · kernel dropped %d", line, st.Packets, st.Exchanges, st.Incomplete, drops)
}

// Live records what the interface carries to and from the ports (thrive
// capture --interface), until ctx ends: the same sessions, rules,
// redaction, journal and rotation as a proxy's capture, the packets' times
// its clock, a status line on Status once a second (with the packets the
// kernel dropped), and at the end what it read and the trace's summary.
func (im *Import) Live(ctx context.Context, iface string) error {
	f := passive.Filter{Ports: im.Ports, Hosts: im.Hosts}
	h, err := passive.OpenInterface(iface, f)
	if err != nil {
		if errors.Is(err, passive.ErrPrivilege) {
			err = hint.With(err, "grant it: sudo setcap cap_net_raw+ep \"$(command -v thrive)\", or run as root; or record with tcpdump and thrive import the pcap")
		}
		return err
	}
	defer h.Close()
	im.live = true
	fmt.Fprintf(im.Out, "capturing HTTP to and from ports %v on %s into %s (Ctrl-C to stop)\n", portsOr80(im.Ports), iface, im.Sink.Path)
	// Open sessions' exchanges kept against a kill, beside the trace.
	im.Options = append(im.Options, capture.WithJournal(im.Sink.Path+capture.JournalSuffix))
	lz := &lazyImport{im: im, source: "interface"}
	var read atomic.Pointer[passive.Stats]
	stopStatus := statusline.Start(im.Status, func() string { return lz.status(h, &read) })
	st, readErr := passive.Live(ctx, h, f, lz.add, lz.advance, func(st passive.Stats) { read.Store(&st) })
	stopStatus()
	packets, drops := h.Kernel()
	im.writeStats(iface, st)
	fmt.Fprintf(im.Out, "%s: the kernel passed %d packets to the capture and dropped %d\n", iface, packets, drops)
	if drops > 0 {
		writeWarning(im.Out, fmt.Sprintf("%s: the kernel dropped %d of %d packets: the capture could not keep up, and exchanges they carried are incomplete or dropped", iface, drops, packets),
			"give the capture a core of its own, or narrow it with --port and --host")
	}
	err = lz.close(readErr, iface)
	if cause := context.Cause(ctx); err == nil && cause != nil {
		if _, bySignal := interrupt.ExitCode(cause); bySignal {
			return fmt.Errorf("capture %w: every session captured is written", cause)
		}
	}
	return err
}

// portsOr80 returns ports, or port 80 when there are none.
func portsOr80(ports []int) []int {
	if len(ports) == 0 {
		return []int{80}
	}
	return ports
}

// readPackets reads the packet capture at path ("-": In) with rd, the
// files before it read already, and says how many packets it held.
func (im *Import) readPackets(rd *passive.Reader, path string, advance func(time.Time)) error {
	r := im.In
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	before := rd.Stats().Packets
	err := rd.Read(bufio.NewReaderSize(im.counted(r), 1<<20), path, advance)
	if len(im.Files) > 1 {
		fmt.Fprintf(im.Out, "%s: %d packets\n", path, rd.Stats().Packets-before)
	}
	return err
}

// writeStats says what the packets from where held and what of them was
// lost.
func (im *Import) writeStats(path string, st passive.Stats) {
	fmt.Fprintf(im.Out, "%s: %d packets, %d connections, %d exchanges whole, %d incomplete", path, st.Packets, st.Connections, st.Exchanges, st.Incomplete)
	for _, why := range slices.Sorted(maps.Keys(st.Dropped)) {
		fmt.Fprintf(im.Out, "; %d dropped: %s", st.Dropped[why], why)
	}
	if st.Gaps > 0 {
		fmt.Fprintf(im.Out, "; %d gaps (%d bytes lost)", st.Gaps, st.MissingBytes)
	}
	fmt.Fprintln(im.Out)
	if st.TLS > 0 {
		writeWarning(im.Out, fmt.Sprintf("%s: %d connections carried TLS, which packets do not show the requests of: skipped", path, st.TLS),
			"record HTTPS with the forward proxy: thrive capture --listen :9000, its CA trusted (--print-ca)")
	}
}

// read reads the HAR file at path, and says what it held and what it left
// out.
func (im *Import) read(path string) ([]importer.Seen, error) {
	if !isHAR(path) {
		return nil, fmt.Errorf("%s: import reads HAR files (.har), packet captures (.pcap, .pcapng) and GoReplay files (.gor) so far: %s", path, cmp.Or(filepath.Ext(path), "no extension"))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen, st, err := importer.ReadHAR(im.counted(f), path)
	fmt.Fprintf(im.Out, "%s: %d entries, %d imported", path, st.Entries, st.Imported)
	for _, n := range []struct {
		n    int
		what string
	}{{st.FromCache, "served from the browser's cache"}, {st.NotSent, "never sent"}, {st.NotHTTP, "not HTTP"},
		{st.Unanswered, "unanswered (kept, with their error)"}, {st.NoBody, "with a body the file does not hold"}} {
		if n.n > 0 {
			fmt.Fprintf(im.Out, "; %d %s", n.n, n.what)
		}
	}
	fmt.Fprintln(im.Out)
	return seen, err
}
