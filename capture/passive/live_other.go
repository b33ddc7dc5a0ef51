//go:build !linux

package passive

import (
	"errors"
	"fmt"

	"github.com/google/gopacket"
)

// An Interface is a live capture of a network interface, on Linux only.
type Interface struct{ name string }

// ErrPrivilege is the cause of a failure to open an interface without
// the privilege to capture packets.
var ErrPrivilege = errors.New("capturing packets needs the CAP_NET_RAW capability")

// OpenInterface fails: live capture needs Linux's packet sockets.
func OpenInterface(name string, _ Filter) (*Interface, error) {
	return nil, fmt.Errorf("passive: interface %s: live capture works on Linux only; record a pcap with tcpdump and thrive import it", name)
}

func (h *Interface) read() ([]byte, gopacket.CaptureInfo, error) {
	return nil, gopacket.CaptureInfo{}, errors.New("no interface")
}

// Kernel returns no counts.
func (h *Interface) Kernel() (packets, drops uint64) { return 0, 0 }

// Name returns the interface's name.
func (h *Interface) Name() string { return h.name }

// Close does nothing.
func (h *Interface) Close() error { return nil }
