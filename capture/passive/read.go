// Package passive reads the HTTP/1.x traffic a packet capture holds (a
// pcap or pcapng file, as tcpdump or Wireshark write them) into the
// exchanges a trace records: it reassembles the TCP connections, follows
// their requests and answers with the relays' byte-fed parser
// (wire.MsgStream) and their WebSocket frames with theirs
// (wire.FrameParser), and hands each exchange on with the packets' times,
// for capture.Import to sessionize and write. HTTPS cannot be read from
// packets: TLS connections are counted and skipped.
package passive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/google/gopacket/reassembly"

	"github.com/thrive-loadtest/thrive/traces"
)

// Filter says which TCP traffic is HTTP to read: the connections to one
// of the server ports, and when Hosts is not empty to one of those server
// addresses (IP addresses, as the packets carry them).
type Filter struct {
	// Ports are the servers' TCP ports; none means port 80.
	Ports []int
	// Hosts are the servers' IP addresses; none means any.
	Hosts []string
}

// Stats counts what Read read, so that nothing is lost silently: every
// exchange begun is handed on (whole or incomplete) or dropped with its
// reason.
type Stats struct {
	// Packets is the number of packets in the file.
	Packets int64
	// Undecoded counts packets that were not IP (a link type gopacket does
	// not decode, a damaged header), which cannot be the filter's.
	Undecoded int64
	// Connections counts the TCP connections the filter selected that
	// carried a SYN or bytes.
	Connections int
	// Exchanges counts the exchanges handed on whole.
	Exchanges int
	// Incomplete counts the exchanges handed on with an Error: bytes lost
	// (a gap in the capture, a snaplen cut), an answer that never came (the
	// connection closed, the capture ended), a malformed answer.
	Incomplete int
	// Dropped counts, by reason, the exchanges not handed on (their request
	// head was not whole) and the answers no request was seen for.
	Dropped map[string]int
	// TLS counts the selected connections that carried TLS (HTTPS), which
	// packets do not show the requests of: skipped.
	TLS int
	// Gaps counts the runs of bytes the capture lost (packets missing or
	// cut by the snaplen), and MissingBytes their bytes.
	Gaps         int
	MissingBytes int64
	// Skipped counts the bytes passed over while looking for a message's
	// head: a connection that began before the capture, or after a gap.
	Skipped int64
}

// drop counts a dropped exchange (or answer) under reason.
func (s *Stats) drop(reason string) {
	if s.Dropped == nil {
		s.Dropped = map[string]int{}
	}
	s.Dropped[reason]++
}

// AddFunc takes an exchange Read has read: its request began at start (the
// time of the packet that carried its first byte), on the connection conn
// ("client:port>server:port"), from the client at IP address client. It
// has capture.Import.Add's signature.
type AddFunc func(start time.Time, conn, client string, ex *traces.Exchange)

// BodyLimit is how much of each body (and WebSocket message) Read keeps:
// the first BodyLimit bytes, with the size and SHA-256 of the whole, as a
// capture's default body limit does.
const BodyLimit = 1 << 20

// Times that bound what a reader holds: packets out of order wait for the
// ones missing before them at most gapWait (of the capture's time), after
// which the missing bytes are taken as lost; a connection with no packet
// for idleAfter is taken as over, and forgotten.
const (
	gapWait   = 5 * time.Second
	idleAfter = 5 * time.Minute
	flushTick = time.Second
)

// Read reads packets from r (a pcap or pcapng stream; name names it in
// errors), reassembles the TCP connections f selects, parses their
// HTTP/1.x requests and answers (keep-alive, pipelining, chunked bodies,
// 100 Continue, WebSocket frames after a 101), and hands each exchange to
// add with the packets' times: a request starts at its first byte's
// packet, an answer ends at its last's. advance is given the time of each
// packet, after the exchanges it completed. It returns what it read and,
// for a malformed or truncated file, an error naming the file and the
// packet, once every exchange before it is handed on (those still open
// are handed on incomplete).
func Read(r io.Reader, name string, f Filter, add AddFunc, advance func(time.Time)) (Stats, error) {
	rd := NewReader(f, add)
	err := rd.Read(r, name, advance)
	return rd.Close(), err
}

// A Reader reads packet captures in a row as one capture cut into files
// (tcpdump -C, -G, -W): a connection open at the end of one file goes on
// in the next. It is used by one goroutine.
type Reader struct{ rd *reader }

// NewReader returns a Reader of the traffic f selects, which hands each
// exchange to add (see Read).
func NewReader(f Filter, add AddFunc) *Reader { return &Reader{rd: newReader(f, add)} }

// Read reads the packets of one file, r (name names it in errors), as
// Read does, leaving the connections still open for the next file. Its
// error names the file and the packet of a malformed or truncated file.
func (r *Reader) Read(in io.Reader, name string, advance func(time.Time)) error {
	src, err := openSource(in)
	if err != nil {
		return fmt.Errorf("passive: %s: %w", name, err)
	}
	rd := r.rd
	for n := int64(1); ; n++ {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("truncated: %w", err)
			}
			return fmt.Errorf("passive: %s: packet %d: %w", name, n, err)
		}
		rd.stats.Packets++
		rd.packet(data, ci, src.linkType(ci))
		if advance != nil {
			advance(ci.Timestamp)
		}
	}
}

// Stats returns what the Reader read so far.
func (r *Reader) Stats() Stats { return r.rd.stats }

// Close hands on what the connections still open hold, incomplete (the
// capture ended), and returns what the Reader read.
func (r *Reader) Close() Stats {
	r.rd.finish()
	return r.rd.stats
}

// source is a pcap or pcapng reader.
type source struct {
	pcap *pcapgo.Reader
	ng   *pcapgo.NgReader
}

// pcapngMagic begins a pcapng file (its section header block's type).
const pcapngMagic = "\x0a\x0d\x0d\x0a"

// openSource reads the file's header: pcapng by its magic, else pcap.
func openSource(r io.Reader) (src *source, err error) {
	defer readerPanic(&err)
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("not a pcap or pcapng file: %d bytes", len(magic))
	}
	if string(magic) == pcapngMagic {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("pcapng header: %w", err)
		}
		return &source{ng: ng}, nil
	}
	p, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("not a pcap or pcapng file: %w", err)
	}
	return &source{pcap: p}, nil
}

// ReadPacketData returns the next packet, io.EOF after the last. Its
// bytes are valid until the next call: the assembler copies what it keeps
// of a packet out of order, and the connections what they hold (side.hold).
func (s *source) ReadPacketData() (data []byte, ci gopacket.CaptureInfo, err error) {
	defer readerPanic(&err)
	if s.ng != nil {
		return s.ng.ZeroCopyReadPacketData()
	}
	return s.pcap.ZeroCopyReadPacketData()
}

// readerPanic turns a panic of gopacket's file readers into *err: in
// v1.1.19 some malformed files make them panic (a pcapng interface's
// timestamp resolution past 2^63 divides by zero, an empty option is
// indexed), and a damaged file is an error, not a crash.
func readerPanic(err *error) {
	if v := recover(); v != nil {
		*err = fmt.Errorf("malformed (the reader failed: %v)", v)
	}
}

// linkType returns the link type of the interface a packet was captured
// on: a pcapng file may hold several.
func (s *source) linkType(ci gopacket.CaptureInfo) layers.LinkType {
	if s.ng == nil {
		return s.pcap.LinkType()
	}
	if in, err := s.ng.Interface(ci.InterfaceIndex); err == nil {
		return in.LinkType
	}
	return s.ng.LinkType()
}

// reader reassembles the selected connections of one file.
type reader struct {
	f       filter
	add     AddFunc
	stats   Stats
	asm     *reassembly.Assembler
	dec     decoder
	slab    []packetContext // contexts not yet given (see context)
	flushed time.Time       // the packet time of the last flush
}

// newReader returns a reader of the traffic f selects.
func newReader(f Filter, add AddFunc) *reader {
	rd := &reader{f: newFilter(f), add: add}
	rd.asm = reassembly.NewAssembler(reassembly.NewStreamPool(factory{rd}))
	return rd
}

// packet decodes one packet and, when it is TCP the filter selects, gives
// it to the assembler.
func (rd *reader) packet(data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) {
	nf, src, dst, tcp, ok := rd.dec.decode(data, lt)
	if !ok {
		data, dec := linkDecoder(data, lt)
		p := gopacket.NewPacket(data, dec, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		nl := p.NetworkLayer()
		if nl == nil {
			rd.stats.Undecoded++
			return
		}
		if tcp, ok = p.Layer(layers.LayerTypeTCP).(*layers.TCP); !ok {
			return
		}
		nf = nl.NetworkFlow()
		src, dst = net.IP(nf.Src().Raw()), net.IP(nf.Dst().Raw())
	}
	if !rd.f.server(dst, int(tcp.DstPort)) && !rd.f.server(src, int(tcp.SrcPort)) {
		return
	}
	rd.asm.AssembleWithContext(nf, tcp, rd.context(ci))
	rd.flush(ci.Timestamp)
}

// linkTypeLinuxSLL2 is the link type of Linux's "any" device since libpcap
// 1.10 (tcpdump -i any), 276, which gopacket v1.1.19 does not decode, as
// its readers give it: layers.LinkType is a byte there, so 276 reads as
// 20, a link type nothing else has.
const linkTypeLinuxSLL2 = layers.LinkType(276 & 0xff)

// linkDecoder returns how gopacket decodes a packet of link type lt: its
// own decoder, or for Linux SLL2 its 20-byte header's protocol type, the
// header cut off.
func linkDecoder(data []byte, lt layers.LinkType) ([]byte, gopacket.Decoder) {
	if lt != linkTypeLinuxSLL2 {
		return data, lt
	}
	if len(data) < 20 {
		return data, gopacket.DecodeFunc(func([]byte, gopacket.PacketBuilder) error { return errors.New("a Linux SLL2 header cut short") })
	}
	return data[20:], layers.EthernetType(binary.BigEndian.Uint16(data))
}

// flush, once a second of the capture's time, takes the bytes still
// missing after gapWait as lost and ends the connections idle for
// idleAfter, so that memory is bounded by the connections open.
func (rd *reader) flush(now time.Time) {
	if rd.flushed.IsZero() {
		rd.flushed = now
	}
	if now.Sub(rd.flushed) < flushTick {
		return
	}
	rd.flushed = now
	rd.asm.FlushWithOptions(reassembly.FlushOptions{T: now.Add(-gapWait), TC: now.Add(-idleAfter)})
}

// finish hands on what the connections still open hold: their missing
// bytes are lost, and their exchanges end with the capture.
func (rd *reader) finish() { rd.asm.FlushAll() }

// packetContext gives the assembler a packet's capture info.
type packetContext struct{ ci gopacket.CaptureInfo }

// context returns a context of its own for the packet of ci: the
// assembler keeps the context of a segment it queues, whose time is that
// packet's. They are cut from slabs, an allocation for many packets; a
// slab lives while a segment queued holds one of its contexts.
func (rd *reader) context(ci gopacket.CaptureInfo) *packetContext {
	if len(rd.slab) == 0 {
		rd.slab = make([]packetContext, 256)
	}
	pc := &rd.slab[0]
	rd.slab = rd.slab[1:]
	pc.ci = ci
	return pc
}

// GetCaptureInfo returns the packet's capture info.
func (pc *packetContext) GetCaptureInfo() gopacket.CaptureInfo { return pc.ci }

// filter is a Filter made ready to match packets.
type filter struct {
	ports map[int]bool
	hosts []net.IP
}

// newFilter parses f's hosts and defaults its ports.
func newFilter(f Filter) filter {
	out := filter{ports: map[int]bool{}}
	for _, p := range f.Ports {
		out.ports[p] = true
	}
	if len(out.ports) == 0 {
		out.ports[80] = true
	}
	for _, h := range f.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			out.hosts = append(out.hosts, ip)
		}
	}
	if len(f.Hosts) > 0 && len(out.hosts) == 0 {
		out.hosts = []net.IP{net.IPv6zero} // none parsed: select nothing rather than everything
	}
	return out
}

// server reports whether ip:port is a server the filter selects.
func (f *filter) server(ip net.IP, port int) bool {
	if !f.ports[port] {
		return false
	}
	if len(f.hosts) == 0 {
		return true
	}
	for _, h := range f.hosts {
		if h.Equal(ip) {
			return true
		}
	}
	return false
}
