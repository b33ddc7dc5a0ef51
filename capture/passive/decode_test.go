package passive

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// segment returns a TCP segment from client to server with payload, in
// an IP packet of version 4 or 6, serialized.
func segment(t testing.TB, version int, payload string) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: 40001, DstPort: 8000, Seq: 1000, ACK: true, PSH: true, Window: 512}
	var ip gopacket.SerializableLayer
	if version == 4 {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{127, 0, 0, 2}, DstIP: net.IP{127, 0, 0, 1}}
		_ = tcp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	} else {
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.ParseIP("fd00::2"), DstIP: net.ParseIP("fd00::1")}
		_ = tcp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// framed returns an IP packet of the given version under a link header of
// type lt.
func framed(ip []byte, version int, lt layers.LinkType) []byte {
	proto := uint16(etherIPv4)
	if version == 6 {
		proto = etherIPv6
	}
	var head []byte
	switch lt {
	case layers.LinkTypeEthernet:
		head = make([]byte, 14)
		binary.BigEndian.PutUint16(head[12:], proto)
	case layers.LinkTypeLinuxSLL:
		head = make([]byte, 16)
		binary.BigEndian.PutUint16(head[14:], proto)
	case linkTypeLinuxSLL2:
		head = make([]byte, 20)
		binary.BigEndian.PutUint16(head, proto)
	case layers.LinkTypeNull:
		head = binary.LittleEndian.AppendUint32(nil, map[int]uint32{4: 2, 6: 30}[version])
	case layers.LinkTypeLoop:
		head = binary.BigEndian.AppendUint32(nil, map[int]uint32{4: 2, 6: 30}[version])
	}
	return append(head, ip...)
}

// linkTypes returns the link types the decoder knows.
func linkTypes() []layers.LinkType {
	return []layers.LinkType{layers.LinkTypeRaw, layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, linkTypeLinuxSLL2, layers.LinkTypeNull, layers.LinkTypeLoop}
}

func TestDecode(t *testing.T) {
	var d decoder
	for _, lt := range linkTypes() {
		for _, v := range []int{4, 6} {
			data := framed(segment(t, v, "GET / HTTP/1.1\r\n\r\n"), v, lt)
			nf, src, dst, tcp, ok := d.decode(data, lt)
			if !ok {
				t.Fatalf("link type %d, IPv%d: not decoded", lt, v)
			}
			if tcp.SrcPort != 40001 || tcp.DstPort != 8000 || string(tcp.Payload) != "GET / HTTP/1.1\r\n\r\n" {
				t.Errorf("link type %d, IPv%d: segment %d > %d %q", lt, v, tcp.SrcPort, tcp.DstPort, tcp.Payload)
			}
			want := map[int]string{4: "127.0.0.2>127.0.0.1", 6: "fd00::2>fd00::1"}[v]
			if got := src.String() + ">" + dst.String(); got != want || nf.String() != sameFlow(want) {
				t.Errorf("link type %d, IPv%d: %s, flow %s, want %s", lt, v, got, nf, want)
			}
		}
	}
	// What it does not decode, gopacket does.
	vlan := framed(segment(t, 4, "x"), 4, layers.LinkTypeEthernet)
	vlan = append(append(append([]byte{}, vlan[:12]...), 0x81, 0x00, 0, 7), vlan[12:]...)
	if _, _, _, _, ok := d.decode(vlan, layers.LinkTypeEthernet); ok {
		t.Error("a VLAN-tagged frame decoded as plain Ethernet")
	}
	if _, _, _, _, ok := d.decode(segment(t, 4, "x"), layers.LinkTypePPP); ok {
		t.Error("a link type it does not know decoded")
	}
}

// sameFlow returns a flow's String as gopacket writes it: "src->dst".
func sameFlow(s string) string { return string(bytes.Replace([]byte(s), []byte(">"), []byte("->"), 1)) }

func TestDecodeAllocates(t *testing.T) {
	var d decoder
	data := framed(segment(t, 4, "GET / HTTP/1.1\r\n\r\n"), 4, layers.LinkTypeEthernet)
	if n := testing.AllocsPerRun(100, func() { d.decode(data, layers.LinkTypeEthernet) }); n != 0 {
		t.Errorf("%v allocations a packet, want 0", n)
	}
}

// FuzzDecode checks the decoder against gopacket's own decoding: whatever
// it decodes, gopacket decodes to the same flow and segment, unless
// gopacket fails on it (it panics on some IPv6 packets cut short, where
// the decoder keeps the bytes there are).
func FuzzDecode(f *testing.F) {
	for i, lt := range linkTypes() {
		for _, v := range []int{4, 6} {
			f.Add(uint8(i), framed(segment(f, v, "HTTP/1.1 200 OK\r\n\r\n"), v, lt))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		lts := linkTypes()
		lt := lts[int(which)%len(lts)]
		var d decoder
		nf, _, _, tcp, ok := d.decode(data, lt)
		if !ok {
			return
		}
		data, dec := linkDecoder(data, lt)
		p := gopacket.NewPacket(data, dec, gopacket.DecodeOptions{NoCopy: true})
		if p.ErrorLayer() != nil {
			return
		}
		nl := p.NetworkLayer()
		want, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if nl == nil || want == nil {
			t.Fatalf("decoded %s %d>%d, gopacket found no TCP (%v)", nf, tcp.SrcPort, tcp.DstPort, p)
		}
		if nl.NetworkFlow() != nf || want.SrcPort != tcp.SrcPort || want.DstPort != tcp.DstPort || want.Seq != tcp.Seq ||
			want.FIN != tcp.FIN || want.SYN != tcp.SYN || want.RST != tcp.RST || !bytes.Equal(want.Payload, tcp.Payload) {
			t.Fatalf("decoded %s %d>%d seq %d %q, gopacket %s %d>%d seq %d %q", nf, tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Payload,
				nl.NetworkFlow(), want.SrcPort, want.DstPort, want.Seq, want.Payload)
		}
	})
}
