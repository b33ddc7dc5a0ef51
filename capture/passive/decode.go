package passive

import (
	"encoding/binary"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// decoder decodes the packets that make nearly all of a capture (TCP over
// IPv4 or IPv6 on Ethernet, Linux cooked, BSD loopback or raw IP links)
// into layers it keeps and reuses, so that a packet costs no allocation;
// anything else (VLAN tags, IPv6 extension headers, fragments, other link
// types) it leaves to gopacket's full decoding.
type decoder struct {
	ip4 layers.IPv4
	ip6 layers.IPv6
	tcp layers.TCP
}

// Ethernet types and BSD loopback address families of IP.
const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
)

// decode returns the packet's network flow, its source and destination
// addresses (valid until the next call) and its TCP segment, with ok
// false when the packet is not one it decodes.
func (d *decoder) decode(data []byte, lt layers.LinkType) (nf gopacket.Flow, src, dst net.IP, tcp *layers.TCP, ok bool) {
	ip, version, ok := ipOf(data, lt)
	if !ok || len(ip) == 0 || version != 0 && ip[0]>>4 != version {
		return nf, nil, nil, nil, false
	}
	var payload []byte
	switch ip[0] >> 4 {
	case 4:
		if d.ip4.DecodeFromBytes(ip, gopacket.NilDecodeFeedback) != nil || d.ip4.Protocol != layers.IPProtocolTCP ||
			d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
			return nf, nil, nil, nil, false
		}
		nf, src, dst, payload = d.ip4.NetworkFlow(), d.ip4.SrcIP, d.ip4.DstIP, d.ip4.Payload
	case 6:
		if d.ip6.DecodeFromBytes(ip, gopacket.NilDecodeFeedback) != nil || d.ip6.NextHeader != layers.IPProtocolTCP {
			return nf, nil, nil, nil, false
		}
		nf, src, dst, payload = d.ip6.NetworkFlow(), d.ip6.SrcIP, d.ip6.DstIP, d.ip6.Payload
	default:
		return nf, nil, nil, nil, false
	}
	if d.tcp.DecodeFromBytes(payload, gopacket.NilDecodeFeedback) != nil {
		return nf, nil, nil, nil, false
	}
	return nf, src, dst, &d.tcp, true
}

// ipOf returns the IP packet that a packet of link type lt carries and
// the IP version its link header names (0: the packet's own version
// nibble tells, as on a raw IP link), ok false when it carries something
// else or lt is not one it knows.
func ipOf(data []byte, lt layers.LinkType) (ip []byte, version byte, ok bool) {
	var proto uint16
	switch lt {
	case layers.LinkTypeRaw:
		return data, 0, true
	case layers.LinkTypeIPv4:
		return data, 4, true
	case layers.LinkTypeIPv6:
		return data, 6, true
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return nil, 0, false
		}
		proto, data = binary.BigEndian.Uint16(data[12:]), data[14:]
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return nil, 0, false
		}
		proto, data = binary.BigEndian.Uint16(data[14:]), data[16:]
	case linkTypeLinuxSLL2:
		if len(data) < 20 {
			return nil, 0, false
		}
		proto, data = binary.BigEndian.Uint16(data), data[20:]
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		// A 4-byte address family in the capturing host's byte order, or
		// the network's: small either way, which tells the order.
		if len(data) < 4 {
			return nil, 0, false
		}
		family := binary.LittleEndian.Uint32(data)
		if data[0] == 0 && data[1] == 0 {
			family = binary.BigEndian.Uint32(data)
		}
		switch layers.ProtocolFamily(family) {
		case layers.ProtocolFamilyIPv4:
			return data[4:], 4, true
		case layers.ProtocolFamilyIPv6BSD, layers.ProtocolFamilyIPv6FreeBSD, layers.ProtocolFamilyIPv6Darwin, layers.ProtocolFamilyIPv6Linux:
			return data[4:], 6, true
		}
		return nil, 0, false
	default:
		return nil, 0, false
	}
	switch proto {
	case etherIPv4:
		return data, 4, true
	case etherIPv6:
		return data, 6, true
	}
	return nil, 0, false
}
