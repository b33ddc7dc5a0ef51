package app

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/capture/importer"
	"github.com/thrive-loadtest/thrive/capture/passive"
	"github.com/thrive-loadtest/thrive/traces"
)

// An Import is thrive import: files another tool recorded made into one
// trace, through the capture's sessionizer, profile rules and redaction
// (capture.Import), as if the capture had seen their exchanges. It reads
// HAR files (Chrome, Firefox, Playwright), several making one trace, their
// entries merged by time, each file a client of its own; or packet
// captures (pcap, pcapng: tcpdump, Wireshark), read in the order given as
// tcpdump -C rotates them, "-" for standard input.
type Import struct {
	Files []string
	// Ports are a packet capture's servers' ports whose traffic is HTTP
	// (80 when none); Target is where its requests went, for the trace
	// (when "", the first server seen, as http://IP:PORT).
	Ports  []int
	Target string
	// In is read for the file "-".
	In io.Reader
	// Sink is the trace written.
	Sink *capture.FileSink
	// Options are the capture's: rules, session cookies and idle time,
	// redaction, body limit.
	Options []capture.Option
	// Out takes what the import says: what each file held and left out,
	// and the trace's summary.
	Out io.Writer
}

// Run imports the files. Exchanges read before a damaged file's damage
// are imported, and the damage is the error; the trace is written either
// way.
func (im *Import) Run() error {
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

// close ends imp and says what the trace holds.
func (im *Import) close(imp *capture.Import) error {
	err := imp.Close()
	st := imp.Stats()
	fmt.Fprintf(im.Out, "imported %d sessions, %d exchanges, %d WebSocket frames into %s\n", st.Sessions, st.Exchanges, st.Frames, im.Sink.Path)
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
	var imp *capture.Import
	var openErr, readErr error
	add := func(start time.Time, conn, client string, ex *traces.Exchange) {
		if imp == nil && openErr == nil {
			target := im.Target
			if _, server, ok := strings.Cut(conn, ">"); ok && target == "" {
				target = "http://" + server
			}
			imp, openErr = capture.NewImport("pcap", target, im.Sink, im.Options...)
		}
		if imp != nil {
			imp.Add(start, conn, client, ex)
		}
	}
	advance := func(t time.Time) {
		if imp != nil {
			imp.Advance(t)
		}
	}
	for _, path := range im.Files {
		readErr = errors.Join(readErr, im.readPackets(path, add, advance))
	}
	if imp == nil {
		ports := im.Ports
		if len(ports) == 0 {
			ports = []int{80}
		}
		return errors.Join(readErr, openErr, fmt.Errorf("import: no HTTP exchange to or from ports %v in %s", ports, strings.Join(im.Files, ", ")))
	}
	return errors.Join(readErr, im.close(imp))
}

// readPackets reads the packet capture at path ("-": In) and says what it
// held.
func (im *Import) readPackets(path string, add passive.AddFunc, advance func(time.Time)) error {
	r := im.In
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	st, err := passive.Read(bufio.NewReaderSize(r, 1<<20), path, passive.Filter{Ports: im.Ports}, add, advance)
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
	return err
}

// read reads the HAR file at path, and says what it held and what it left
// out.
func (im *Import) read(path string) ([]importer.Seen, error) {
	if !isHAR(path) {
		return nil, fmt.Errorf("%s: import reads HAR files (.har) and packet captures (.pcap, .pcapng) so far: %s", path, cmp.Or(filepath.Ext(path), "no extension"))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen, st, err := importer.ReadHAR(f, path)
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
