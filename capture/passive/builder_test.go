package passive

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/thrive-loadtest/thrive/traces"
)

// capture builds a packet capture in memory: connections whose segments
// carry correct sequence and acknowledgement numbers both ways, each
// packet a millisecond after the one before unless told otherwise.
type capture struct {
	t     testing.TB
	t0    time.Time
	clock time.Duration
	pkts  []packet
}

// packet is one built packet and its capture time.
type packet struct {
	at   time.Time
	data []byte
}

// t0 is when every built capture begins.
const t0s = "2026-12-06T09:00:00Z"

// t0 is t0s as a time.
func t0() time.Time {
	t, _ := time.Parse(time.RFC3339, t0s)
	return t
}

// newCapture returns an empty capture.
func newCapture(t testing.TB) *capture { return &capture{t: t, t0: t0()} }

// wait moves the capture's clock on by d.
func (c *capture) wait(d time.Duration) { c.clock += d }

// now is the time the next packet gets.
func (c *capture) now() time.Time { return c.t0.Add(c.clock) }

// tcpConn is one built connection.
type tcpConn struct {
	c                *capture
	cliIP, srvIP     net.IP
	cliPort, srvPort uint16
	cseq, sseq       uint32 // the next sequence number each way
}

// conn returns a connection from 10.0.0.7:port to 10.0.0.1:8000 that has
// not begun: open sends its handshake.
func (c *capture) conn(port uint16) *tcpConn {
	return &tcpConn{c: c, cliIP: net.IPv4(10, 0, 0, 7).To4(), srvIP: net.IPv4(10, 0, 0, 1).To4(),
		cliPort: port, srvPort: 8000, cseq: 1000 * uint32(port), sseq: 5000 * uint32(port)}
}

// open sends the three-way handshake.
func (tc *tcpConn) open() *tcpConn {
	tc.c.add(tc.segment(true, nil, flagSYN))
	tc.cseq++
	tc.c.add(tc.segment(false, nil, flagSYN|flagACK))
	tc.sseq++
	tc.c.add(tc.segment(true, nil, flagACK))
	return tc
}

// Flags of a built segment.
const (
	flagSYN = 1 << iota
	flagACK
	flagFIN
	flagPSH
)

// client sends data from the client in one segment, and returns it.
func (tc *tcpConn) client(data string) packet { return tc.send(true, []byte(data)) }

// server sends data from the server in one segment, and returns it.
func (tc *tcpConn) server(data string) packet { return tc.send(false, []byte(data)) }

// send sends data one way in one segment and returns it.
func (tc *tcpConn) send(fromClient bool, data []byte) packet {
	p := tc.next(fromClient, data)
	tc.c.add(p)
	return p
}

// next builds the next segment of data one way, advancing the sequence
// number, without adding it to the capture: for segments sent out of
// order, twice, or lost.
func (tc *tcpConn) next(fromClient bool, data []byte) packet {
	p := tc.segment(fromClient, data, flagACK|flagPSH)
	if fromClient {
		tc.cseq += uint32(len(data))
	} else {
		tc.sseq += uint32(len(data))
	}
	return p
}

// close sends a FIN each way.
func (tc *tcpConn) close() {
	tc.c.add(tc.segment(true, nil, flagFIN|flagACK))
	tc.cseq++
	tc.c.add(tc.segment(false, nil, flagFIN|flagACK))
	tc.sseq++
	tc.c.add(tc.segment(true, nil, flagACK))
}

// segment serializes one Ethernet/IPv4/TCP packet at the capture's clock,
// which moves on a millisecond.
func (tc *tcpConn) segment(fromClient bool, data []byte, flags int) packet {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 7}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: tc.cliIP, DstIP: tc.srvIP}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(tc.cliPort), DstPort: layers.TCPPort(tc.srvPort), Seq: tc.cseq, Ack: tc.sseq, Window: 65535}
	if !fromClient {
		eth.SrcMAC, eth.DstMAC = eth.DstMAC, eth.SrcMAC
		ip.SrcIP, ip.DstIP = ip.DstIP, ip.SrcIP
		tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = tcp.DstPort, tcp.SrcPort, tc.sseq, tc.cseq
	}
	tcp.SYN, tcp.ACK, tcp.FIN, tcp.PSH = flags&flagSYN != 0, flags&flagACK != 0, flags&flagFIN != 0, flags&flagPSH != 0
	if flags&flagSYN != 0 && flags&flagACK == 0 {
		tcp.Ack = 0
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		tc.c.t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(data)); err != nil {
		tc.c.t.Fatal(err)
	}
	p := packet{at: tc.c.now(), data: append([]byte(nil), buf.Bytes()...)}
	tc.c.clock += time.Millisecond
	return p
}

// add appends a packet to the capture, at the time it was built.
func (c *capture) add(p packet) { c.pkts = append(c.pkts, p) }

// addAt appends a packet again (retransmitted, or sent out of order) at
// the capture's clock.
func (c *capture) addAt(p packet) {
	p.at = c.now()
	c.clock += time.Millisecond
	c.pkts = append(c.pkts, p)
}

// pcap writes the capture as a pcap file.
func (c *capture) pcap() []byte {
	var out bytes.Buffer
	w := pcapgo.NewWriterNanos(&out)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		c.t.Fatal(err)
	}
	for _, p := range c.pkts {
		ci := gopacket.CaptureInfo{Timestamp: p.at, CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			c.t.Fatal(err)
		}
	}
	return out.Bytes()
}

// pcapng writes the capture as a pcapng file.
func (c *capture) pcapng() []byte {
	var out bytes.Buffer
	w, err := pcapgo.NewNgWriter(&out, layers.LinkTypeEthernet)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, p := range c.pkts {
		ci := gopacket.CaptureInfo{Timestamp: p.at, CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		c.t.Fatal(err)
	}
	return out.Bytes()
}

// sll2 writes the capture as a pcap file of link type Linux SLL2 (276, as
// tcpdump -i any writes), which pcapgo's writer cannot name: its header is
// patched, and each packet's Ethernet header becomes an SLL2 one.
func (c *capture) sll2() []byte {
	cooked := *c
	cooked.pkts = nil
	for _, p := range c.pkts {
		h := make([]byte, 20, 20+len(p.data)-14)
		binary.BigEndian.PutUint16(h, 0x0800)  // IPv4
		binary.BigEndian.PutUint32(h[4:], 1)   // the interface's index
		binary.BigEndian.PutUint16(h[8:], 772) // ARPHRD_LOOPBACK
		cooked.pkts = append(cooked.pkts, packet{at: p.at, data: append(h, p.data[14:]...)})
	}
	file := cooked.pcap()
	binary.LittleEndian.PutUint32(file[20:], 276)
	return file
}

// got is an exchange Read handed on, with where it came from.
type got struct {
	start        time.Time
	conn, client string
	ex           traces.Exchange
}

// read reads file with the filter of the built connections' server port,
// and returns the exchanges, the stats, and the error.
func read(t testing.TB, file []byte) ([]got, Stats, error) {
	var out []got
	var last time.Time
	st, err := Read(bytes.NewReader(file), "test.pcap", Filter{Ports: []int{8000}}, func(start time.Time, conn, client string, ex *traces.Exchange) {
		out = append(out, got{start, conn, client, *ex})
	}, func(now time.Time) {
		if now.Before(last) {
			t.Errorf("advance went back from %v to %v", last, now)
		}
		last = now
	})
	return out, st, err
}

// mustRead reads file, which is to have no error.
func mustRead(t testing.TB, file []byte) ([]got, Stats) {
	t.Helper()
	out, st, err := read(t, file)
	if err != nil {
		t.Fatal(err)
	}
	return out, st
}

// wsFrame encodes one WebSocket frame, masked as a client's are.
func wsFrame(fin bool, op byte, payload []byte, masked bool) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, m|byte(n))
	case n < 1<<16:
		out = append(out, m|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}
