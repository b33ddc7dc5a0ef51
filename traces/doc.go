// Package traces holds thrive's data model (Session, Exchange, WebSocket,
// Frame) and the trace file codec that capture writes and replay reads,
// and what every package says of an exchange the same way: its endpoint
// (Template, Namer, Operation), its path patterns (MatchPath, the one
// syntax of capture's rules and replay's endpoint names), its bodies as
// the application meant them (Content).
//
// # File layout
//
// A trace file is a header followed by blocks:
//
//	header: "THRV" | version u16 | meta length u32 | meta JSON | crc32c u32
//	block:  "TBLK" | stored u32 | raw u32 | sessions u32 | payload crc32c u32 | header crc32c u32 | payload
//	end:    "TEND" | blocks u32 | sessions u64 | 0 u32 | crc32c u32          (version 2)
//
// All integers are little endian. Each block's payload is one zstd frame
// holding whole records, so every block decodes on its own, and its magic
// and header checksum let a reader find the next block after a damaged one:
// damage costs only the sessions of the blocks it hit, and the Reader's last
// error names where they were. The end record, written by Writer.Close,
// tells a whole file from one cut at a block boundary. A file cut inside a
// block yields every session before the cut.
//
// A record is a session, or (version 4) a part of one: a session of any
// length or size is written in parts as it goes (Writer.WritePart; a
// capture's long poll or all-day socket) or when it is too large for one
// record, and the Reader joins them, so a replayer never sees half a
// session unless the file lacks its last part, and then says so
// (Session.Partial).
//
// # Why a hand-rolled binary encoding
//
// Inside a block, sessions are encoded as length-prefixed fields with
// varints, in a fixed order and without field tags. Decoding is a bounds
// check and a slice per field: no reflection, no per-field allocation, and
// strings and bodies point into the decompressed block instead of being
// copied. That keeps reading far above what a replay needs (hundreds of
// thousands of exchanges per second on one core), which JSON, gob or
// protobuf-with-reflection do not reach. Compression is left to zstd over the
// whole block, where repeated headers and JSON keys across sessions are cheap;
// a per-field scheme would not beat it. Readability is the job of
// Session.MarshalJSON and `thrive traces cat`, not of the file.
//
// Adding a field means a new format version: Reader refuses versions newer
// than Version with ErrVersion and reads every older one.
package traces
