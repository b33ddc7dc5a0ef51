// Package wire reads HTTP/1.x and WebSocket as they cross a connection,
// without changing or holding up a byte: heads (ReadHead from a
// bufio.Reader, or MsgStream fed pieces of any size as an event loop or a
// packet capture sees them), bodies by their framing (RelayBody, with a Tap
// keeping the first bytes, the size and a SHA-256 of each), and WebSocket
// frames (FrameParser into a Socket). The capture's two relays use it, and
// so will passive capture from packets and the importers.
package wire
