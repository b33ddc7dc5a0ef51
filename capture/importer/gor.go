package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"container/heap"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// GoReplay's file format (--output-file), as GoReplay 1.3 writes it and
// reads it back (--input-file): a payload per record, each record a header
// line, the payload's bytes, and the separator line:
//
//	1 e1b6487b7f00000179af14e5 1796582989179006114 0\n
//	POST /api/auth/login/ HTTP/1.1\r\n ... the raw request ...
//	\n🐵🙈🙉\n
//
// The header is the payload's kind ('1' a request, '2' the response the
// server gave, '3' the response a replay got, from --output-http with
// --output-http-track-response), its id (a request and its responses share
// it), its time in nanoseconds since the epoch, and a latency in
// nanoseconds. GoReplay 0.16 leaves the latency out when it has none.
//
// What the time and the latency measure depends on the version that wrote
// them. From GoReplay 1.2 on, --input-raw gives each payload the time of
// its first packet and, as latency, the time from its first packet to its
// last: a request began at its time, its answer's first byte came at the
// response's time, and its last at that plus the response's latency.
// GoReplay 1.0 and 1.1 give a request no latency (-1), and a response the
// time from the end of its request to its own end; the end of the request
// is not written, so the answer's end is taken as no earlier than that
// latency after the request's start.
//
// From GoReplay 1.2 on, --input-raw makes an id of 24 hex digits from the
// client's port, the server's port, the client's IPv4 address (the last
// four bytes of an IPv6 one) and the TCP acknowledgment number of the
// request; the importer reads the connection, the client and the server's
// port from it.
// Earlier versions (a SHA-1 of 40 digits) and other inputs (random ids)
// tie an exchange to no connection and no client.
//
// Responses are written only with --input-raw-track-response. Of a
// WebSocket, GoReplay writes the upgrade request and its 101 answer, and
// none of the frames: they are neither a request nor a response to its
// HTTP parser, which it holds until --input-raw-expire and drops.

// The separator ends each payload: a line of its own after the payload's
// last byte.
const gorSeparator = "\n🐵🙈🙉\n"

// maxGorPayload bounds a payload: a record that has not ended by then is
// not GoReplay's (which cuts messages at --copy-buffer-size, 5 MB unless
// set).
const maxGorPayload = 64 << 20

// DefaultGorWait is how long of a file's time a payload waits for its
// pair (a request for its response, a response for its request) when
// GorReader.Wait is 0: long enough for an answer streamed for minutes.
const DefaultGorWait = 10 * time.Minute

// ErrGorTruncated is the error of a GoReplay file that ends inside a
// record: the end of the file is not the end of a payload.
var ErrGorTruncated = errors.New("cut short inside a record")

// A GorReader reads files that GoReplay wrote (--output-file), several in
// a row as one recording (the chunks requests_0.gor, requests_1.gor, ...
// that GoReplay rotates to), gzip-compressed or not, and hands each
// request with its response to Add as an exchange. It pairs a request
// with its response by their id, wherever the two are in the files;
// memory holds the payloads waiting for their pair, not the files.
//
// What GoReplay does not keep, an exchange does not have: no connection
// and no client address but what an id of GoReplay 1.2 and later tells
// (see above); for other files, sessions are keyed by their cookies and
// tokens alone, and the requests of a visit before its first cookie or
// token (a login) go with the visit whose login answers next. No
// WebSocket frames: an upgrade is an exchange whose socket has none.
//
// A GorReader is used by one goroutine.
type GorReader struct {
	// Add is given each exchange once its request and response are read,
	// in the order the requests began: GoReplay writes each message once
	// its packets are reassembled, a second or two after messages that
	// began later, so an exchange is held until the files' time is
	// gorReorder past its start (or End). start is when the request
	// began, conn and client what its id tells ("" when nothing). ex's
	// offsets are 0; its TTFB and Duration are from start. It may keep
	// ex.
	Add func(start time.Time, conn, client string, ex *traces.Exchange)
	// Wait is how long of the files' time (their latest payload's) a
	// payload waits for its pair before it is counted left out; 0 means
	// DefaultGorWait.
	Wait time.Duration
	// Ports, when not empty, are the servers' ports whose exchanges are
	// handed on (GoReplay records several with several --input-raw): an
	// exchange whose id tells another port, or none (see above), is left
	// out and counted in OtherPorts.
	Ports []int

	waiting map[string]*gorPayload // by kind and id
	queue   []*gorPayload          // in the order read, to expire them
	clock   int64                  // the latest payload time read
	held    heldExchanges          // paired, waiting to be handed on in the order they began
	stats   GorStats
}

// gorReorder is how long of the files' time an exchange is held for those
// that began before it and come later in the files: GoReplay writes a
// message once its packets are reassembled, or expired (--input-raw-expire,
// 2 s by default), so a file holds messages out of the order they began by
// up to about that (1.2 s measured on loopback).
const gorReorder = 10 * time.Second

// heldExchange is an exchange paired and not yet handed on.
type heldExchange struct {
	start        int64 // nanoseconds since the epoch
	seq          int   // the order paired, for exchanges that began at once
	conn, client string
	ex           *traces.Exchange
}

// heldExchanges is a heap of exchanges by start, earliest first.
type heldExchanges []heldExchange

func (h heldExchanges) Len() int { return len(h) }
func (h heldExchanges) Less(i, j int) bool {
	return h[i].start < h[j].start || h[i].start == h[j].start && h[i].seq < h[j].seq
}
func (h heldExchanges) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldExchanges) Push(x any) {
	if e, ok := x.(heldExchange); ok {
		*h = append(*h, e)
	}
}
func (h *heldExchanges) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = heldExchange{}
	*h = old[:len(old)-1]
	return x
}

// release hands on the exchanges held that began before until (all, when
// until is math.MaxInt64), earliest first.
func (g *GorReader) release(until int64) {
	for g.held.Len() > 0 && g.held[0].start < until {
		x, _ := heap.Pop(&g.held).(heldExchange)
		if g.Add != nil {
			g.Add(time.Unix(0, x.start), x.conn, x.client, x.ex)
		}
	}
}

// GorStats counts what GoReplay files held and what was left out, and why.
type GorStats struct {
	// Records is the number of records read whole: Requests, Responses
	// and Replayed.
	Records int
	// Requests and Responses are the payloads of kind 1 (requests) and 2
	// (the server's responses).
	Requests, Responses int
	// Replayed is the number of responses of kind 3, which a replay got
	// from another server: left out.
	Replayed int
	// Exchanges is the number of exchanges handed on whole, and
	// Incomplete the number handed on with a message cut short (GoReplay
	// cuts those larger than --copy-buffer-size), with Error saying so.
	Exchanges, Incomplete int
	// Unanswered is the number of requests left out because no response
	// of theirs was read (a file written without
	// --input-raw-track-response has none), and Unasked the number of
	// responses left out because no request of theirs was.
	Unanswered, Unasked int
	// NotHTTP is the number of requests left out, with their response,
	// because they (or it) are not HTTP/1.x (--input-raw-protocol binary).
	NotHTTP int
	// OtherPorts is the number of requests left out, with their response,
	// because their id tells a server port not in GorReader.Ports, or
	// none.
	OtherPorts int
}

// gorPayload is a record read and waiting for its pair.
type gorPayload struct {
	kind    byte
	id      string
	at      int64 // nanoseconds since the epoch
	latency int64 // nanoseconds; -1 when the file gives none
	data    []byte
	done    bool // paired or expired: no longer waiting
}

// Read reads the GoReplay file r (gzip-compressed or not, whatever its
// name), which name names in errors, handing on each exchange whose
// request and response are both read by its end. A payload whose pair is
// not read yet waits for the next file. It returns what the file held:
// its records by kind and the exchanges it completed.
//
// A malformed or truncated file is an error that names it and the record,
// counted from 1, with the byte it begins at (in the uncompressed data),
// such as "requests_0.gor: record 17 (byte 20133): cut short inside a
// record"; every exchange completed before it is handed on (by End at
// the latest).
func (g *GorReader) Read(r io.Reader, name string) (GorStats, error) {
	before := g.stats
	err := g.read(r)
	if err != nil {
		err = fmt.Errorf("%s: %w", name, err)
	}
	return g.stats.minus(before), err
}

// End counts the payloads still waiting for their pair as left out, and
// returns the counts of every file read.
func (g *GorReader) End() GorStats {
	g.release(math.MaxInt64)
	for _, p := range g.queue {
		g.leftOut(p)
	}
	g.queue, g.waiting = nil, nil
	return g.stats
}

// minus returns the counts of s not in before.
func (s GorStats) minus(before GorStats) GorStats {
	return GorStats{
		Records: s.Records - before.Records, Requests: s.Requests - before.Requests,
		Responses: s.Responses - before.Responses, Replayed: s.Replayed - before.Replayed,
		Exchanges: s.Exchanges - before.Exchanges, Incomplete: s.Incomplete - before.Incomplete,
		Unanswered: s.Unanswered - before.Unanswered, Unasked: s.Unasked - before.Unasked,
		NotHTTP: s.NotHTTP - before.NotHTTP, OtherPorts: s.OtherPorts - before.OtherPorts,
	}
}

// read reads the records of r, uncompressing it first if it is gzip.
func (g *GorReader) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	var off int64
	for n := 1; ; n++ {
		p, size, err := readGorRecord(br)
		if errors.Is(err, io.EOF) && size == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("record %d (byte %d): %w", n, off, err)
		}
		off += size
		g.take(p)
	}
}

// readGorRecord reads one record from br: its header line, then lines up
// to the separator's. It returns the payload, the record's size in bytes,
// and io.EOF, with size 0, at the end of the file before a record.
func readGorRecord(br *bufio.Reader) (*gorPayload, int64, error) {
	header, err := br.ReadSlice('\n')
	size := int64(len(header))
	switch {
	case errors.Is(err, io.EOF) && size == 0:
		return nil, 0, io.EOF
	case errors.Is(err, io.EOF):
		return nil, size, ErrGorTruncated
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, size, errors.New("no payload header: a line longer than any header")
	case err != nil:
		return nil, size, err
	}
	p, err := parseGorHeader(header[:len(header)-1])
	if err != nil {
		return nil, size, err
	}
	sep := []byte(gorSeparator[1:])
	var data []byte
	for {
		line, err := br.ReadSlice('\n')
		size += int64(len(line))
		if err == nil && bytes.Equal(line, sep) && (len(data) == 0 || data[len(data)-1] == '\n') {
			// A line of its own (not the end of a line longer than the
			// buffer). The payload's last byte is followed by the
			// separator's newline, which is not the payload's.
			if len(data) == 0 {
				return nil, size, errors.New("a payload with no bytes")
			}
			p.data = data[:len(data)-1]
			return p, size, nil
		}
		data = append(data, line...)
		switch {
		case errors.Is(err, io.EOF):
			return nil, size, ErrGorTruncated
		case err != nil && !errors.Is(err, bufio.ErrBufferFull):
			return nil, size, err
		case len(data) > maxGorPayload:
			return nil, size, fmt.Errorf("no separator in the first %d MiB of the payload", maxGorPayload>>20)
		}
	}
}

// parseGorHeader parses a payload's header line, without its newline:
// "KIND ID TIME LATENCY", the latency optional.
func parseGorHeader(line []byte) (*gorPayload, error) {
	f := bytes.Fields(line)
	if len(f) < 3 || len(f) > 4 || len(f[0]) != 1 || f[0][0] < '1' || f[0][0] > '3' {
		return nil, fmt.Errorf("not a payload header: %q", clip(line))
	}
	p := &gorPayload{kind: f[0][0], id: string(f[1]), latency: -1}
	var err error
	if p.at, err = strconv.ParseInt(string(f[2]), 10, 64); err != nil || p.at <= 0 {
		return nil, fmt.Errorf("payload header %q: time %q is not nanoseconds since the epoch", clip(line), f[2])
	}
	if len(f) == 4 {
		if p.latency, err = strconv.ParseInt(string(f[3]), 10, 64); err != nil || p.latency < -1 {
			return nil, fmt.Errorf("payload header %q: latency %q is not nanoseconds", clip(line), f[3])
		}
	}
	return p, nil
}

// clip shortens a line quoted in an error.
func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// take counts a record read whole, pairs it with the payload waiting for
// it if there is one, else makes it wait, and expires the payloads that
// waited too long.
func (g *GorReader) take(p *gorPayload) {
	g.stats.Records++
	switch p.kind {
	case '1':
		g.stats.Requests++
	case '2':
		g.stats.Responses++
	default:
		g.stats.Replayed++
		return
	}
	g.clock = max(g.clock, p.at)
	if g.waiting == nil {
		g.waiting = map[string]*gorPayload{}
	}
	pairKind := byte('1')
	if p.kind == '1' {
		pairKind = '2'
	}
	if pair := g.waiting[string(pairKind)+p.id]; pair != nil {
		delete(g.waiting, string(pairKind)+p.id)
		pair.done = true
		if p.kind == '1' {
			g.pair(p, pair)
		} else {
			g.pair(pair, p)
		}
	} else {
		key := string(p.kind) + p.id
		if old := g.waiting[key]; old != nil {
			// The same id again before the first found its pair: the
			// first will not (pipelined requests share an id).
			g.leftOut(old)
		}
		g.waiting[key] = p
		g.queue = append(g.queue, p)
	}
	g.expire()
}

// expire counts the payloads that have waited longer than Wait of the
// files' time as left out, oldest first, and forgets the paired ones at
// the front of the queue.
func (g *GorReader) expire() {
	wait := g.Wait
	if wait <= 0 {
		wait = DefaultGorWait
	}
	i := 0
	for ; i < len(g.queue); i++ {
		p := g.queue[i]
		if !p.done && g.clock-p.at <= wait.Nanoseconds() {
			break
		}
		g.leftOut(p)
	}
	g.queue = g.queue[i:]
	if i > 0 && len(g.queue) == 0 {
		g.queue = nil // let the array go
	}
}

// leftOut counts p, if still waiting, as left out for want of its pair.
func (g *GorReader) leftOut(p *gorPayload) {
	if p.done {
		return
	}
	p.done = true
	if key := string(p.kind) + p.id; g.waiting[key] == p {
		delete(g.waiting, key)
	}
	if p.kind == '1' {
		g.stats.Unanswered++
	} else {
		g.stats.Unasked++
	}
}

// pair makes an exchange of a request and its response and hands it on.
func (g *GorReader) pair(req, resp *gorPayload) {
	conn, client, port := gorConn(req.id)
	if len(g.Ports) > 0 && !slices.Contains(g.Ports, port) {
		g.stats.OtherPorts++
		return
	}
	ex, err := gorExchange(req.data, resp.data)
	if err != nil {
		g.stats.NotHTTP++
		return
	}
	ex.TTFB = max(time.Duration(resp.at-req.at), 0)
	end := ex.TTFB + time.Duration(max(resp.latency, 0))
	if req.latency < 0 {
		// GoReplay before 1.2: the response's latency runs from the end
		// of the request, which is not written.
		end = max(ex.TTFB, time.Duration(resp.latency))
	}
	ex.Duration = max(end, ex.TTFB)
	if ex.Error != "" {
		g.stats.Incomplete++
	} else {
		g.stats.Exchanges++
	}
	heap.Push(&g.held, heldExchange{start: req.at, seq: g.stats.Exchanges + g.stats.Incomplete, conn: conn, client: client, ex: ex})
	g.release(g.clock - int64(gorReorder))
}

// gorConn reads the connection ("client:port>:server port"), the
// client's address and the server's port from an id of GoReplay 1.2 and
// later: 24 hex digits, the client's port, the server's port, the
// client's IPv4 address and an acknowledgment number. Other ids give ""
// and 0.
func gorConn(id string) (conn, client string, port int) {
	var b [12]byte
	if len(id) != 2*len(b) {
		return "", "", 0
	}
	if _, err := hex.Decode(b[:], []byte(id)); err != nil {
		return "", "", 0
	}
	cport, sport := int(b[0])<<8|int(b[1]), int(b[2])<<8|int(b[3])
	if cport == 0 || sport == 0 {
		return "", "", 0
	}
	ip := netip.AddrFrom4([4]byte(b[4:8])).String()
	return ip + ":" + strconv.Itoa(cport) + ">:" + strconv.Itoa(sport), ip, sport
}
