package passive

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// An Interface is a live capture of a network interface's TCP traffic to
// and from some ports: an AF_PACKET socket (no libpcap, no cgo) in cooked
// mode (SOCK_DGRAM: packets from their IP header, whatever the link), with
// a kernel BPF filter (see program) so that only the segments asked for
// are copied up, a large socket buffer, and the kernel's packet times.
//
// It is not gopacket's pcapgo.EthernetHandle, which this package could
// have used: in v1.1.19 a read on it blocks until a packet comes, so a
// quiet capture cannot be stopped; its socket buffer is the system's
// default, which overflows at tens of thousands of requests a second; and
// its Ethernet framing reads nothing on links without one.
type Interface struct {
	name string
	fd   int
	buf  []byte
	oob  []byte

	mu      sync.Mutex
	packets uint64 // what the kernel counted: passed by the filter
	drops   uint64 // and dropped, the socket's buffer full
}

// readTimeout is how long a read waits for a packet before it returns
// errQuiet: how often a quiet capture looks at its context and clock.
const readTimeout = 200 * time.Millisecond

// socketBuffer is the receive buffer asked for: packets wait there while
// the reader is busy.
const socketBuffer = 64 << 20

// snapLength is the most of a packet kept: the largest IP packet.
const snapLength = 1 << 16

// ErrPrivilege is the cause of a failure to open an interface without
// the privilege to capture packets.
var ErrPrivilege = errors.New("capturing packets needs the CAP_NET_RAW capability")

// OpenInterface starts capturing the TCP segments to and from f's ports
// on the interface named name. Without CAP_NET_RAW its error wraps
// ErrPrivilege.
func OpenInterface(name string, f Filter) (*Interface, error) {
	in, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("passive: interface %s: %w", name, err)
	}
	prog, err := program(newFilter(f), in.Flags&net.FlagLoopback != 0)
	if err != nil {
		return nil, fmt.Errorf("passive: the filter: %w", err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("passive: interface %s: %w (%w)", name, ErrPrivilege, err)
		}
		return nil, fmt.Errorf("passive: interface %s: a packet socket: %w", name, err)
	}
	h := &Interface{name: name, fd: fd, buf: make([]byte, snapLength), oob: make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))))}
	if err := h.setup(in.Index, prog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("passive: interface %s: %w", name, err)
	}
	return h, nil
}

// setup filters the socket before binding it to the interface (so that
// nothing unfiltered is queued), and sets its buffer, timestamps and read
// timeout.
func (h *Interface) setup(index int, prog []bpf.RawInstruction) error {
	f := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		f[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if err := unix.SetsockoptSockFprog(h.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}); err != nil {
		return fmt.Errorf("attaching the filter: %w", err)
	}
	if err := unix.SetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer); err != nil {
		_ = unix.SetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer) // capped by net.core.rmem_max
	}
	if err := unix.SetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("packet times: %w", err)
	}
	tv := unix.NsecToTimeval(readTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(h.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("a read timeout: %w", err)
	}
	if err := unix.Bind(h.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
		return fmt.Errorf("binding: %w", err)
	}
	return nil
}

// htons is the network order of a 16-bit number, as sockets take it.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read returns the next packet (valid until the next read) with the time
// the kernel received it, or errQuiet after readTimeout without one.
func (h *Interface) read() ([]byte, gopacket.CaptureInfo, error) {
	n, oobn, _, _, err := unix.Recvmsg(h.fd, h.buf, h.oob, unix.MSG_TRUNC)
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return nil, gopacket.CaptureInfo{}, errQuiet
	case err != nil:
		return nil, gopacket.CaptureInfo{}, os.NewSyscallError("recvmsg", err)
	}
	ci := gopacket.CaptureInfo{Length: n, CaptureLength: min(n, len(h.buf)), Timestamp: packetTime(h.oob[:oobn])}
	return h.buf[:ci.CaptureLength], ci, nil
}

// packetTime returns the time a SCM_TIMESTAMPNS message in oob holds, or
// now without one.
func packetTime(oob []byte) time.Time {
	hdr := unix.CmsgLen(0)
	if len(oob) >= hdr+16 {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if c.Level == unix.SOL_SOCKET && c.Type == unix.SCM_TIMESTAMPNS {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[hdr]))
			return time.Unix(ts.Unix())
		}
	}
	return time.Now()
}

// Kernel returns how many packets the kernel passed to the capture so far
// and how many of them it dropped because the capture's buffer was full.
func (h *Interface) Kernel() (packets, drops uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st, err := unix.GetsockoptTpacketStats(h.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		// The kernel's counts are since the last time they were read.
		h.packets += uint64(st.Packets)
		h.drops += uint64(st.Drops)
	}
	return h.packets, h.drops
}

// Name returns the interface's name.
func (h *Interface) Name() string { return h.name }

// Close ends the capture.
func (h *Interface) Close() error {
	h.Kernel() // its last counts
	return unix.Close(h.fd)
}

// program returns the BPF program that passes the TCP segments (IPv4 and
// IPv6, not fragments) to or from one of f's ports that carry bytes or
// open or close a connection: bare acknowledgements, half a connection's
// packets, stay in the kernel. On loopback, where each packet is seen as
// it leaves and as it arrives, the copy leaving stays too. The packets
// begin at their IP header (a cooked socket), their protocol in the
// packet's metadata.
func program(f filter, loopback bool) ([]bpf.RawInstruction, error) {
	var a asm
	if loopback {
		a.add(bpf.LoadExtension{Num: bpf.ExtType})
		a.jumpIf(bpf.JumpEqual, unix.PACKET_OUTGOING, "drop", "")
	}
	a.add(bpf.LoadExtension{Num: bpf.ExtProto})
	a.jumpIf(bpf.JumpEqual, unix.ETH_P_IP, "v4", "")
	a.jumpIf(bpf.JumpEqual, unix.ETH_P_IPV6, "v6", "drop")

	a.label("v4")
	a.add(bpf.LoadAbsolute{Off: 9, Size: 1}) // protocol
	a.jumpIf(bpf.JumpEqual, unix.IPPROTO_TCP, "", "drop")
	a.add(bpf.LoadAbsolute{Off: 6, Size: 2}) // fragment offset
	a.jumpIf(bpf.JumpBitsSet, 0x1fff, "drop", "")
	a.add(bpf.LoadMemShift{Off: 0}) // X = the IP header's length
	a.ports(f, bpf.LoadIndirect{Off: 0, Size: 2}, bpf.LoadIndirect{Off: 2, Size: 2}, "v4tcp")
	a.label("v4tcp")
	a.add(bpf.LoadIndirect{Off: 13, Size: 1})   // flags
	a.jumpIf(bpf.JumpBitsSet, 0x07, "keep", "") // FIN, SYN, RST
	a.add(bpf.LoadIndirect{Off: 12, Size: 1})   // data offset
	a.tcpLength()
	a.add(bpf.LoadAbsolute{Off: 2, Size: 2}) // total length
	a.add(bpf.ALUOpX{Op: bpf.ALUOpSub})      // minus the IP header
	a.payload()

	a.label("v6")
	a.add(bpf.LoadAbsolute{Off: 6, Size: 1}) // next header: TCP, no extension headers
	a.jumpIf(bpf.JumpEqual, unix.IPPROTO_TCP, "", "drop")
	a.ports(f, bpf.LoadAbsolute{Off: 40, Size: 2}, bpf.LoadAbsolute{Off: 42, Size: 2}, "v6tcp")
	a.label("v6tcp")
	a.add(bpf.LoadAbsolute{Off: 53, Size: 1})
	a.jumpIf(bpf.JumpBitsSet, 0x07, "keep", "")
	a.add(bpf.LoadAbsolute{Off: 52, Size: 1})
	a.tcpLength()
	a.add(bpf.LoadAbsolute{Off: 4, Size: 2}) // payload length
	a.payload()

	a.label("keep")
	a.add(bpf.RetConstant{Val: snapLength})
	a.label("drop")
	a.add(bpf.RetConstant{Val: 0})
	return a.assemble()
}

// asm assembles a BPF program whose jumps name labels.
type asm struct {
	ins    []bpf.Instruction
	jumps  map[int][2]string // instruction → its labels if true, if false ("": the next)
	labels map[string]int
}

func (a *asm) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

// jumpIf adds a conditional jump on A to the labels t and f ("": on).
func (a *asm) jumpIf(cond bpf.JumpTest, val uint32, t, f string) {
	if a.jumps == nil {
		a.jumps = map[int][2]string{}
	}
	a.jumps[len(a.ins)] = [2]string{t, f}
	a.add(bpf.JumpIf{Cond: cond, Val: val})
}

// ports jumps to match when the port src or dst loads is one of f's, and
// to drop otherwise.
func (a *asm) ports(f filter, src, dst bpf.Instruction, match string) {
	for i, load := range []bpf.Instruction{src, dst} {
		a.add(load)
		n := 0
		for p := range f.ports {
			n++
			miss := ""
			if i == 1 && n == len(f.ports) {
				miss = "drop"
			}
			a.jumpIf(bpf.JumpEqual, uint32(p), match, miss)
		}
	}
}

// tcpLength turns the data offset byte in A into the TCP header's length,
// kept in M[0].
func (a *asm) tcpLength() {
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: 0})
}

// payload keeps the segment when A, the IP payload's length, is longer
// than the TCP header in M[0].
func (a *asm) payload() {
	a.add(bpf.LoadScratch{Dst: bpf.RegX, N: 0})
	a.add(bpf.ALUOpX{Op: bpf.ALUOpSub})
	a.jumpIf(bpf.JumpGreaterThan, 0, "keep", "drop")
}

// assemble resolves the labels and assembles the program.
func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	for at, to := range a.jumps {
		j, ok := a.ins[at].(bpf.JumpIf)
		if !ok {
			return nil, fmt.Errorf("instruction %d is not a jump", at)
		}
		for k, name := range to {
			if name == "" {
				continue
			}
			target, found := a.labels[name]
			skip := target - at - 1
			if !found || skip < 0 || skip > 255 {
				return nil, fmt.Errorf("a jump to %q from %d", name, at)
			}
			if k == 0 {
				j.SkipTrue = uint8(skip)
			} else {
				j.SkipFalse = uint8(skip)
			}
		}
		a.ins[at] = j
	}
	return bpf.Assemble(a.ins)
}
