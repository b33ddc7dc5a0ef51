package passive

import (
	"net"
	"strconv"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/reassembly"
)

// factory makes the assembler's stream for each new connection.
type factory struct{ rd *reader }

// New returns the state of a connection whose first packet seen is tcp.
// Which end is the server is the filter's say (its port), not the
// packets' order: the first seen may be the server's.
func (fa factory) New(nf, tf gopacket.Flow, tcp *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	rd := fa.rd
	src, dst := net.IP(nf.Src().Raw()), net.IP(nf.Dst().Raw())
	c := &conn{rd: rd, clientDir: reassembly.TCPDirClientToServer}
	cli, srv := hostPort(src, int(tcp.SrcPort)), hostPort(dst, int(tcp.DstPort))
	c.client = src.String()
	if !rd.f.server(dst, int(tcp.DstPort)) {
		// The first packet seen is the server's.
		c.clientDir = reassembly.TCPDirServerToClient
		cli, srv = srv, cli
		c.client = dst.String()
	}
	c.id = cli + ">" + srv
	// Without a SYN the connection began before the capture: its first
	// bytes may be the middle of a message.
	c.midstream = !tcp.SYN
	c.cli = side{c: c, fromClient: true, synced: !c.midstream, boundary: true}
	c.srv = side{c: c, synced: !c.midstream, boundary: true}
	c.cli.reset()
	c.srv.reset()
	return c
}

// hostPort names an endpoint as net.JoinHostPort does.
func hostPort(ip net.IP, port int) string { return net.JoinHostPort(ip.String(), strconv.Itoa(port)) }

// Accept takes every packet of the connection; a direction whose start
// (its SYN) was not seen starts at its first packet.
func (c *conn) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, _ reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, _ reassembly.AssemblerContext) bool {
	if nextSeq < 0 && !tcp.SYN {
		*start = true
	}
	if !c.counted && (tcp.SYN || len(tcp.Payload) > 0) {
		c.counted = true
		c.rd.stats.Connections++
	}
	if tcp.FIN || tcp.RST {
		c.closed = true
	}
	if ci.Timestamp.After(c.last) {
		c.last = ci.Timestamp
	}
	return true
}

// ReassembledSG takes the next bytes of one direction, in order, each run
// of them with the time of the packet that carried it; skipped bytes (a
// gap: packets lost or cut) come first.
func (c *conn) ReassembledSG(sg reassembly.ScatterGather, _ reassembly.AssemblerContext) {
	dir, _, _, skip := sg.Info()
	s := &c.srv
	if dir == c.clientDir {
		s = &c.cli
	}
	length, _ := sg.Lengths()
	if skip > 0 {
		at := time.Time{}
		if length > 0 {
			at, _ = timeAt(sg, 0)
		}
		s.take(chunk{at: at, gap: int64(skip)})
	}
	if length == 0 {
		return
	}
	data := sg.Fetch(length)
	var prev time.Time
	for off := 0; off < length; {
		at, ok := timeAt(sg, off)
		if !ok {
			at = prev
		}
		end := runEnd(sg, off, length, at)
		s.take(chunk{at: at, b: data[off:end]})
		off, prev = end, at
	}
}

// timeAt returns the time of the packet that carried sg's byte at off, or
// false when gopacket cannot tell. A segment that came before the bytes
// ahead of it waits in pages of 1,900 bytes, and gopacket v1.1.19 keeps
// the packet's context in its first page only: asking for the time of a
// later page dereferences a nil context. Those bytes are the rest of the
// packet of the page before, so the caller takes that page's time.
func timeAt(sg reassembly.ScatterGather, off int) (at time.Time, ok bool) {
	defer func() {
		if recover() != nil {
			at, ok = time.Time{}, false
		}
	}()
	return sg.CaptureInfo(off).Timestamp, true
}

// runEnd returns where the run of bytes from off that came in packets of
// time at ends: the first offset after it of another time, found by
// galloping then halving, since most runs are one packet or all of sg.
// A byte whose time gopacket cannot tell (see timeAt) counts as of the
// run's time, as the rest of a packet of the run, though it may be of a
// later one: such bytes came out of order, and their run's time is at most
// the reordering's delay early.
func runEnd(sg reassembly.ScatterGather, off, length int, at time.Time) int {
	same := func(i int) bool {
		t, ok := timeAt(sg, i)
		return !ok || t.Equal(at)
	}
	if same(length - 1) {
		return length
	}
	lo, step := off, 1 // same(lo) holds
	hi := lo + step
	for hi < length-1 && same(hi) {
		lo, step = hi, step*2
		hi = min(lo+step, length-1)
	}
	for hi-lo > 1 { // same(lo), !same(hi)
		mid := (lo + hi) / 2
		if same(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// ReassemblyComplete ends the connection: closed both ways, idle past
// idleAfter, or the capture over.
func (c *conn) ReassemblyComplete(reassembly.AssemblerContext) bool {
	c.end()
	return true
}
