// Command mkpcap writes a synthetic packet capture (pcap) of HTTP/1.1
// sessions to a server on port 8000, for measuring thrive import: its
// speed, and that its memory is bounded by the connections and sessions
// open, not by the file. Each session is one keep-alive connection of
// its own client address: a handshake, a login whose answer sets a
// session cookie, then GETs that send it with JSON answers of -body bytes,
// then the close. -open sessions are under way at once, their exchanges
// interleaved, and a new one begins as one ends; the packets' clock moves
// a millisecond for each exchange.
//
//	go run ./bench/mkpcap -sessions 20000 -out /tmp/big.pcap
//	go run ./bench/mkpcap -sessions 20000 | thrive import - --port 8000 --out big.thrv
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func main() {
	sessions := flag.Int("sessions", 10000, "sessions to write")
	requests := flag.Int("requests", 20, "GETs in each session, after its login")
	body := flag.Int("body", 1024, "bytes of each GET's answer")
	open := flag.Int("open", 200, "sessions under way at once")
	out := flag.String("out", "-", "the pcap to write (- for standard output)")
	flag.Parse()
	f := os.Stdout
	if *out != "-" {
		var err error
		if f, err = os.Create(*out); err != nil {
			log.Fatal(err)
		}
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		log.Fatal(err)
	}
	g := &gen{w: w, at: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC), json: `{"id":7,"items":"` + strings.Repeat("x", max(*body-20, 0)) + `"}`}
	var live []*conn
	next := 0
	for next < *sessions || len(live) > 0 {
		for len(live) < *open && next < *sessions {
			live = append(live, g.start(next))
			next++
		}
		kept := live[:0]
		for _, c := range live {
			if c.done < *requests {
				g.get(c)
				kept = append(kept, c)
			} else {
				g.close(c)
			}
		}
		live = kept
	}
	if err := bw.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// gen writes the packets.
type gen struct {
	w    *pcapgo.Writer
	at   time.Time
	json string
	buf  gopacket.SerializeBuffer
}

// conn is a session's connection.
type conn struct {
	n          int
	cli        net.IP
	port       uint16
	cseq, sseq uint32
	done       int
}

// start opens session n's connection and logs in.
func (g *gen) start(n int) *conn {
	c := &conn{n: n, cli: net.IPv4(10, byte(n>>16), byte(n>>8), byte(n)).To4(), port: uint16(20000 + n%40000), cseq: 1000, sseq: 9000}
	g.segment(c, true, nil, true, false)
	c.cseq++
	g.segment(c, false, nil, true, false)
	c.sseq++
	form := fmt.Sprintf("username=user%d&password=pw-user%d", n, n)
	g.send(c, true, fmt.Sprintf("POST /api/auth/login/ HTTP/1.1\r\nHost: app.test\r\nUser-Agent: mkpcap\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(form), form))
	g.send(c, false, fmt.Sprintf("HTTP/1.1 200 OK\r\nSet-Cookie: sessionid=s%d; Path=/; HttpOnly\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}", n))
	return c
}

// get makes the session's next GET.
func (g *gen) get(c *conn) {
	g.send(c, true, fmt.Sprintf("GET /api/projects/%d/ HTTP/1.1\r\nHost: app.test\r\nUser-Agent: mkpcap\r\nCookie: sessionid=s%d\r\n\r\n", c.done%50, c.n))
	g.send(c, false, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(g.json), g.json))
	c.done++
}

// close ends the connection.
func (g *gen) close(c *conn) {
	g.segment(c, true, nil, false, true)
	c.cseq++
	g.segment(c, false, nil, false, true)
	c.sseq++
}

// send writes data one way, in segments of loopback's size at most.
func (g *gen) send(c *conn, fromClient bool, data string) {
	for len(data) > 0 {
		n := min(len(data), 65000)
		g.segment(c, fromClient, []byte(data[:n]), false, false)
		if fromClient {
			c.cseq += uint32(n)
		} else {
			c.sseq += uint32(n)
		}
		data = data[n:]
	}
	g.at = g.at.Add(500 * time.Microsecond)
}

// segment writes one Ethernet/IPv4/TCP packet.
func (g *gen) segment(c *conn, fromClient bool, data []byte, syn, fin bool) {
	srv := net.IPv4(10, 255, 0, 1).To4()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: c.cli, DstIP: srv}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(c.port), DstPort: 8000, Seq: c.cseq, Ack: c.sseq, Window: 65535, SYN: syn, FIN: fin, ACK: !syn || !fromClient, PSH: len(data) > 0}
	if !fromClient {
		ip.SrcIP, ip.DstIP = srv, c.cli
		tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = 8000, layers.TCPPort(c.port), c.sseq, c.cseq
	}
	if syn && fromClient {
		tcp.Ack = 0
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		log.Fatal(err)
	}
	if g.buf == nil {
		g.buf = gopacket.NewSerializeBuffer()
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 7}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
	if err := gopacket.SerializeLayers(g.buf, gopacket.SerializeOptions{FixLengths: true}, eth, ip, tcp, gopacket.Payload(data)); err != nil {
		log.Fatal(err)
	}
	b := g.buf.Bytes()
	if err := g.w.WritePacket(gopacket.CaptureInfo{Timestamp: g.at, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		log.Fatal(err)
	}
}
