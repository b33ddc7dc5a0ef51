package apptest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Engine.IO

// sioEngine is an Engine.IO socket, with its Socket.IO client.
type sioEngine struct {
	id         string
	sess, user string // the handshake's session id and user ("" if none)
	transport  string // "polling" or "websocket"
	state      string // "open", "closing", "closed"
	buf        []string
	poll       chan string // the held GET's answer
	posting    bool
	ws, probe  *sioWS
	upgrading  bool
	upgraded   bool
	// polling's orderly close: after the buffer drains, then with the next GET
	closeAfterDrain, shouldClose bool
	ping                         [2]time.Duration
	timers                       map[string]*time.Timer
	sock                         *sioSock // the Socket.IO socket of "/"
}

// sioSock is a Socket.IO socket.
type sioSock struct {
	id    string
	e     *sioEngine
	user  string
	rooms map[string]bool
}

// sioWS is a WebSocket, written by a goroutine of its own.
type sioWS struct {
	conn *websocket.Conn
	e    *sioEngine
	out  chan string
	done bool // out closed
}

func (e *sioEngine) timer(name string, d time.Duration, f func()) {
	if t := e.timers[name]; t != nil {
		t.Stop()
	}
	e.timers[name] = time.AfterFunc(d, f)
}

func (e *sioEngine) stop(names ...string) {
	for _, n := range names {
		if t := e.timers[n]; t != nil {
			t.Stop()
			delete(e.timers, n)
		}
	}
}

// sioQuery is Object.fromEntries(URLSearchParams): the last value wins.
func sioQuery(raw string) map[string]string {
	q, _ := url.ParseQuery(raw)
	m := map[string]string{}
	for k, v := range q {
		m[k] = v[len(v)-1]
	}
	return m
}

var sioErrorMessages = [...]string{"Transport unknown", "Session ID unknown", "Bad handshake method", "Bad request", "Forbidden", "Unsupported protocol version"} //nolint:gochecknoglobals // constant table

func (a *SocketIO) serveEngine(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	then := a.engineRequest(w, r)
	a.mu.Unlock()
	if then != nil {
		then()
	}
}

// engineRequest is engine.io's handleRequest and handleUpgrade, after the
// session middleware; what it returns is done without the lock.
func (a *SocketIO) engineRequest(w http.ResponseWriter, r *http.Request) func() {
	q := sioQuery(r.URL.RawQuery)
	s := a.session(r) // io.engine.use(sessionMiddleware): read, never modified here
	upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
	transport, sid := q["transport"], q["sid"]
	e := a.engines[sid]
	code, count := -1, "bad request"
	switch {
	case transport != "polling" && transport != "websocket":
		code = 0
	case sid != "" && e == nil:
		code, count = 1, "unknown sid"
	case sid != "" && !upgrade && e.transport != transport: // TRANSPORT_MISMATCH
		code = 3
	case sid == "" && r.Method != http.MethodGet:
		code = 2
	case sid == "" && transport == "websocket" && !upgrade: // TRANSPORT_HANDSHAKE_ERROR
		code = 3
	case sid == "" && q["EIO"] != "4":
		code = 5
	case a.closed:
		code = 3
	}
	if code >= 0 {
		a.Counts.Add(count, 1)
		if upgrade {
			sioAbortUpgrade(w, sioErrorMessages[code])
		} else {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, sioJSON(struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}{code, sioErrorMessages[code]}))
		}
		return nil
	}
	switch {
	case upgrade:
		a.upgrade(w, r, e, s, transport)
		return nil
	case e == nil:
		return a.poll(w, r, a.handshake(s, nil))
	case r.Method == http.MethodGet:
		return a.poll(w, r, e)
	case r.Method == http.MethodPost:
		return a.post(w, r, e)
	}
	w.WriteHeader(http.StatusInternalServerError)
	return nil
}

// sioAbortUpgrade is engine.io's abortUpgrade: a bare answer on the socket.
func sioAbortUpgrade(w http.ResponseWriter, msg string) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
	_ = rw.Flush()
}

// handshake opens an Engine.IO session, on polling or on the WebSocket ws.
func (a *SocketIO) handshake(s *sioSess, ws *sioWS) *sioEngine {
	e := &sioEngine{id: a.base64id(0), transport: "polling", state: "open", ping: a.ping, timers: map[string]*time.Timer{}}
	upgrades := []string{"websocket"}
	if ws != nil {
		e.transport, e.ws, ws.e, upgrades = "websocket", ws, e, []string{}
	}
	if s.found {
		e.sess, e.user = s.id, s.data.User
	}
	a.engines[e.id] = e
	a.Counts.Add("handshakes", 1)
	a.send(e, "0"+sioJSON(struct {
		Sid          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int64    `json:"pingInterval"`
		PingTimeout  int64    `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}{e.id, upgrades, e.ping[0].Milliseconds(), e.ping[1].Milliseconds(), sioMaxPayload}))
	a.schedulePing(e)
	e.timer("connect", sioConnectTimeout, func() { // socket.io's connectTimeout
		a.mu.Lock()
		defer a.mu.Unlock()
		if e.sock == nil {
			a.closeEngine(e)
		}
	})
	return e
}

func (a *SocketIO) schedulePing(e *sioEngine) {
	e.timer("ping", e.ping[0], func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if e.state != "open" {
			return
		}
		a.send(e, "2")
		e.timer("pong", e.ping[1], func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if e.state != "closed" {
				a.Counts.Add("ping timeout", 1)
				a.onClose(e, "ping timeout")
			}
		})
	})
}

// send is the Engine.IO socket's sendPacket: buffered, flushed at once if
// the transport can take it.
func (a *SocketIO) send(e *sioEngine, pkt string) {
	if e.state != "open" {
		return
	}
	e.buf = append(e.buf, pkt)
	a.flush(e)
}

// emit sends a Socket.IO packet as an Engine.IO message.
func (a *SocketIO) emit(e *sioEngine, pkt string) { a.send(e, "4"+pkt) }

func (a *SocketIO) flush(e *sioEngine) {
	if e.state == "closed" || len(e.buf) == 0 {
		return
	}
	if e.transport == "websocket" {
		for _, p := range e.buf {
			e.ws.send(p)
		}
		e.buf = nil
		return
	}
	if e.poll == nil {
		return
	}
	a.answerPoll(e, strings.Join(e.buf, sioSep))
	e.buf = nil
	if e.closeAfterDrain {
		e.closeAfterDrain = false
		a.shouldClose(e)
	}
}

func (a *SocketIO) answerPoll(e *sioEngine, body string) {
	if e.poll != nil {
		e.poll <- body
		e.poll = nil
	}
}

func (a *SocketIO) shouldClose(e *sioEngine) {
	e.shouldClose = true
	e.timer("close", sioCloseTimeout, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.onClose(e, "forced close")
	})
}

// poll is a GET on the polling transport: held until there is something
// to send.
func (a *SocketIO) poll(w http.ResponseWriter, r *http.Request, e *sioEngine) func() {
	if e.poll != nil { // "overlap from client"
		a.Counts.Add("bad request", 1)
		a.onClose(e, "transport error")
		w.WriteHeader(http.StatusBadRequest)
		return nil
	}
	ch := make(chan string, 1)
	e.poll = ch
	a.flush(e)
	if e.poll == ch && e.shouldClose {
		a.answerPoll(e, "6"+sioSep+"1")
		a.onClose(e, "forced close")
	}
	return func() {
		select {
		case body := <-ch:
			h := w.Header()
			h.Set("Content-Type", "text/plain; charset=UTF-8")
			h.Set("Cache-Control", "no-store")
			if len(body) >= 1024 && sioAcceptsGzip(r.Header.Get("Accept-Encoding")) { // httpCompression's threshold
				var b bytes.Buffer
				z := gzip.NewWriter(&b)
				_, _ = io.WriteString(z, body)
				_ = z.Close()
				body = b.String()
				h.Set("Content-Encoding", "gzip")
			}
			h.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, body)
		case <-r.Context().Done(): // "poll connection closed prematurely"
			a.mu.Lock()
			defer a.mu.Unlock()
			if e.poll == ch {
				e.poll = nil
				a.onClose(e, "transport error")
			}
		}
	}
}

func sioAcceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		fields := strings.Split(part, ";")
		enc, q := strings.ToLower(strings.TrimSpace(fields[0])), "1"
		for _, f := range fields[1:] {
			if k, v, _ := strings.Cut(strings.TrimSpace(f), "="); k == "q" {
				q = v
			}
		}
		if f, err := strconv.ParseFloat(q, 64); (enc == "gzip" || enc == "*") && err == nil && f > 0 {
			return true
		}
	}
	return false
}

// post is a POST on the polling transport: a payload of packets.
func (a *SocketIO) post(w http.ResponseWriter, r *http.Request, e *sioEngine) func() {
	if e.posting || r.Header.Get("Content-Type") == "application/octet-stream" {
		a.Counts.Add("bad request", 1)
		a.onClose(e, "transport error")
		w.WriteHeader(http.StatusBadRequest)
		return nil
	}
	e.posting = true
	return func() {
		body, err := io.ReadAll(io.LimitReader(r.Body, sioMaxPayload+1))
		a.mu.Lock()
		defer a.mu.Unlock()
		e.posting = false
		switch {
		case err != nil:
			a.onClose(e, "transport error")
			return
		case len(body) > sioMaxPayload:
			a.Counts.Add("bad request", 1)
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		case e.state == "closed": // the data request was destroyed
			panic(http.ErrAbortHandler)
		}
		for _, p := range strings.Split(string(body), sioSep) {
			if p == "1" { // polling's own close packet
				a.onClose(e, "transport close")
				continue
			}
			if !a.onPacket(e, p) {
				break
			}
		}
		h := w.Header()
		h.Set("Content-Type", "text/html")
		h.Set("Content-Length", "2")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
	}
}

// badPacket counts a packet the engine or Socket.IO refused, and logs it
// with the engine's state.
func (a *SocketIO) badPacket(e *sioEngine, p string) {
	a.Counts.Add("bad packet", 1)
	a.tb.Logf("socket.io app: bad packet %.80q (engine %s, %s, upgraded %v, socket %v)", p, e.state, e.transport, e.upgraded, e.sock != nil)
}

// onPacket is the Engine.IO socket's onPacket; false after a parse error.
func (a *SocketIO) onPacket(e *sioEngine, p string) bool {
	if p == "" || (p[0] < '0' || p[0] > '6') && p[0] != 'b' {
		if e.state == "open" {
			a.badPacket(e, p)
			a.onClose(e, "parse error")
		}
		return false
	}
	if e.state != "open" {
		return true
	}
	switch p[0] {
	case 'b': // binary data, which no Socket.IO packet is waiting for
		a.badPacket(e, p)
		a.closeClient(e)
	case '2': // "invalid heartbeat direction"
		a.badPacket(e, p)
		a.onClose(e, "transport error")
	case '3':
		e.stop("pong")
		if t := e.timers["ping"]; t != nil {
			t.Reset(e.ping[0])
		}
	case '4':
		a.onSocketIO(e, p[1:])
	}
	return true
}

// onClose is the Engine.IO socket's onClose: the transport closed, the
// session gone.
func (a *SocketIO) onClose(e *sioEngine, _ string) {
	if e.state == "closed" {
		return
	}
	e.state = "closed"
	e.stop(slices.Collect(maps.Keys(e.timers))...)
	if e.probe != nil {
		e.probe.close()
		e.probe = nil
	}
	if e.transport == "polling" {
		a.answerPoll(e, "1")
	} else {
		e.ws.close()
	}
	e.buf = nil
	delete(a.engines, e.id)
	if e.sock != nil {
		a.sockClose(e.sock)
	}
}

// closeClient is the Socket.IO client's close: its sockets gone, and the
// Engine.IO socket's close(): the buffer drained, then the transport
// closed.
func (a *SocketIO) closeClient(e *sioEngine) {
	if e.sock != nil {
		a.sockClose(e.sock)
	}
	a.closeEngine(e)
}

func (a *SocketIO) closeEngine(e *sioEngine) {
	if e.state != "open" {
		return
	}
	e.state = "closing"
	switch {
	case e.transport == "websocket":
		e.ws.close()
		a.onClose(e, "forced close")
	case e.poll != nil:
		a.answerPoll(e, "1")
		a.onClose(e, "forced close")
	case len(e.buf) > 0:
		e.closeAfterDrain = true
	default:
		a.shouldClose(e)
	}
}

// WebSocket

func (a *SocketIO) upgrade(w http.ResponseWriter, r *http.Request, e *sioEngine, s *sioSess, transport string) {
	conn, err := a.upgrader.Upgrade(w, r, nil)
	if err != nil {
		a.Counts.Add("bad request", 1)
		return
	}
	conn.SetReadLimit(sioMaxPayload)
	x := &sioWS{conn: conn, out: make(chan string, 1024)}
	a.conns[x] = true
	a.wg.Add(2)
	go x.write(&a.wg)
	go a.read(x)
	if a.closed {
		conn.Close()
	}
	switch {
	case transport != "websocket": // "transport doesnt handle upgraded requests"
		x.close()
	case e == nil:
		a.handshake(s, x)
	case e.upgrading || e.upgraded || e.state != "open":
		x.close()
	default:
		x.e, e.probe, e.upgrading = e, x, true
		e.timer("upgrade", sioUpgradeTimeout, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if e.probe == x {
				a.upgradeDone(e)
				x.close()
			}
		})
	}
}

func (x *sioWS) send(s string) {
	if x.done {
		return
	}
	select {
	case x.out <- s:
	default: // a reader that does not read
		x.close()
	}
}

func (x *sioWS) close() {
	if !x.done {
		x.done = true
		close(x.out)
	}
}

// write is x's writer, until send's channel closes; then, as ws's
// close(), a close frame without a code, and the peer's awaited 2 s.
func (x *sioWS) write(wg *sync.WaitGroup) {
	defer wg.Done()
	for s := range x.out {
		_ = x.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := x.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			x.conn.Close()
			for range x.out { // until the reader, failing too, closes it
			}
			return
		}
	}
	_ = x.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNoStatusReceived, ""), time.Now().Add(time.Second))
	_ = x.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
}

// read is x's reader, until the connection fails or closes.
func (a *SocketIO) read(x *sioWS) {
	defer a.wg.Done()
	defer x.conn.Close()
	for {
		mt, data, err := x.conn.ReadMessage()
		a.mu.Lock()
		if err != nil {
			delete(a.conns, x)
			x.close()
			if e := x.e; e != nil && e.probe == x {
				a.upgradeDone(e)
			} else if e != nil && e.ws == x {
				a.onClose(e, "transport close")
			}
			a.mu.Unlock()
			return
		}
		a.wsMessage(x, mt, string(data))
		a.mu.Unlock()
	}
}

func (a *SocketIO) wsMessage(x *sioWS, mt int, s string) {
	e := x.e
	switch {
	case e == nil:
	case e.probe == x: // the upgrade
		switch {
		case mt == websocket.TextMessage && s == "2probe":
			x.send("3probe")
			var tick func()
			tick = func() { // a noop to the held poll, for a fast upgrade
				a.mu.Lock()
				defer a.mu.Unlock()
				if e.probe != x {
					return
				}
				if e.transport == "polling" && e.poll != nil {
					a.answerPoll(e, "6")
				}
				e.timer("check", 100*time.Millisecond, tick)
			}
			e.timer("check", 100*time.Millisecond, tick)
		case mt == websocket.TextMessage && s == "5" && e.state != "closed":
			a.upgradeDone(e)
			a.answerPoll(e, "1") // polling discarded and closed
			e.stop("pong")
			e.upgraded, e.transport, e.ws = true, "websocket", x
			a.Counts.Add("upgrades", 1)
			a.flush(e)
			if e.state == "closing" {
				x.close()
				a.onClose(e, "forced close")
			}
		default:
			a.upgradeDone(e)
			x.close()
		}
	case e.ws != x:
	case mt != websocket.TextMessage:
		a.onPacket(e, "b")
	case s == "1": // no meaning on a WebSocket
	default:
		a.onPacket(e, s)
	}
}

func (a *SocketIO) upgradeDone(e *sioEngine) {
	e.upgrading, e.probe = false, nil
	e.stop("upgrade", "check")
}

// Socket.IO

// sioPacket is a Socket.IO packet: type, namespace, ack id (-1: none) and
// data (nil: none).
type sioPacket struct {
	typ  int
	nsp  string
	id   int
	data json.RawMessage
}

var sioReserved = []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} //nolint:gochecknoglobals // constant list

// sioDecode is socket.io-parser's decodeString, binary packets refused.
func sioDecode(s string) (sioPacket, error) {
	p := sioPacket{nsp: "/", id: -1}
	if s == "" || s[0] < '0' || s[0] > '6' {
		return p, fmt.Errorf("unknown packet type %.1q", s)
	}
	if p.typ = int(s[0] - '0'); p.typ == 5 || p.typ == 6 {
		return p, fmt.Errorf("binary packets are not expected")
	}
	i := 1
	if i < len(s) && s[i] == '/' {
		j := strings.IndexByte(s[i:], ',')
		if j < 0 {
			p.nsp, i = s[i:], len(s)
		} else {
			p.nsp, i = s[i:i+j], i+j+1
		}
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j > i {
		n, err := strconv.Atoi(s[i:j])
		if err != nil {
			return p, err
		}
		p.id, i = n, j
	}
	if i >= len(s) {
		return p, nil
	}
	p.data = json.RawMessage(s[i:])
	var v any
	if json.Unmarshal(p.data, &v) != nil {
		v = false // tryParse
	}
	_, isObj := v.(map[string]any)
	_, isStr := v.(string)
	arr, isArr := v.([]any)
	ok := false
	switch p.typ {
	case 0:
		ok = isObj
	case 4:
		ok = isObj || isStr
	case 2:
		if len(arr) > 0 {
			name, isName := arr[0].(string)
			_, isNum := arr[0].(float64)
			ok = isNum || isName && !slices.Contains(sioReserved, name)
		}
	case 3:
		ok = isArr
	}
	if !ok {
		return p, fmt.Errorf("invalid payload")
	}
	return p, nil
}

// onSocketIO is the Socket.IO client's ondata and ondecoded.
func (a *SocketIO) onSocketIO(e *sioEngine, data string) {
	p, err := sioDecode(data)
	switch {
	case err != nil:
		a.badPacket(e, data)
		a.closeClient(e)
	case p.nsp != "/" && p.typ == 0:
		a.Counts.Add("invalid namespace", 1)
		a.emit(e, "4"+p.nsp+","+`{"message":"Invalid namespace"}`)
	case e.sock == nil && p.typ == 0 && p.nsp == "/":
		a.connect(e)
	case e.sock != nil && p.nsp == "/" && p.typ != 0 && p.typ != 4:
		switch p.typ {
		case 1: // "client namespace disconnect"
			a.sockClose(e.sock)
		case 2:
			a.onEvent(e.sock, p)
		}
	default: // "invalid state"
		a.badPacket(e, data)
		a.closeClient(e)
	}
}

// connect runs the namespace's middleware: the handshake's session must
// be logged in.
func (a *SocketIO) connect(e *sioEngine) {
	if e.user == "" {
		a.Counts.Add("connect refused", 1)
		a.emit(e, `4{"message":"unauthorized"}`)
		return
	}
	k := &sioSock{id: a.base64id(1), e: e, user: e.user, rooms: map[string]bool{}}
	e.sock = k
	e.stop("connect")
	a.join(k, k.id)
	a.emit(e, "0"+sioJSON(struct {
		Sid string `json:"sid"`
	}{k.id}))
	a.Counts.Add("connections", 1)
	// io.on("connection"): the session's room, and a welcome
	a.join(k, e.sess)
	a.emit(e, "2"+sioJSON([]any{"welcome", struct {
		User string `json:"user"`
		Room string `json:"room"`
	}{k.user, a.users[k.user]}}))
}

func (a *SocketIO) join(k *sioSock, room string) {
	if a.members[room] == nil {
		a.members[room] = map[*sioSock]bool{}
	}
	a.members[room][k], k.rooms[room] = true, true
}

func (a *SocketIO) sockClose(k *sioSock) {
	for room := range k.rooms {
		if delete(a.members[room], k); len(a.members[room]) == 0 {
			delete(a.members, room)
		}
	}
	k.rooms = map[string]bool{}
	if k.e.sock == k {
		k.e.sock = nil
	}
}

// broadcast is io.to(room).emit(event, v).
func (a *SocketIO) broadcast(room, event string, v any) {
	pkt := "2" + sioJSON([]any{event, v})
	for k := range a.members[room] {
		a.emit(k.e, pkt)
	}
}

type sioError struct {
	Error string `json:"error"`
}

// onEvent is the app's handlers of join, message and edit.
func (a *SocketIO) onEvent(k *sioSock, p sioPacket) {
	var args []json.RawMessage
	_ = json.Unmarshal(p.data, &args)
	var name string
	_ = json.Unmarshal(args[0], &name)
	arg := func(v any) bool { return len(args) > 1 && json.Unmarshal(args[1], v) == nil }
	ack := func(count string, v any) {
		a.Counts.Add(count, 1)
		if p.id >= 0 {
			a.emit(k.e, "3"+strconv.Itoa(p.id)+"["+sioJSON(v)+"]")
		}
	}
	forbidden, missing := sioError{"forbidden"}, sioError{"not found"}
	switch name {
	case "join":
		var room string
		switch arg(&room); {
		case a.rooms[room] == "":
			ack("missing room", missing)
		case a.rooms[room] != k.user:
			ack("foreign room", forbidden)
		default:
			a.join(k, room)
			history := []*sioMessage{}
			for _, id := range slices.Sorted(maps.Keys(a.messages)) {
				if m := a.messages[id]; m.Room == room {
					history = append(history, m)
				}
			}
			ack("joins", struct {
				Room     string        `json:"room"`
				Messages []*sioMessage `json:"messages"`
			}{room, history[max(0, len(history)-20):]})
		}
	case "message":
		var m struct {
			Room string `json:"room"`
			Text string `json:"text"`
		}
		ok := arg(&m)
		switch owner := a.rooms[m.Room]; {
		case !ok:
			ack("invalid message", sioError{"invalid"})
		case owner == "":
			ack("missing room", missing)
		case owner != k.user:
			ack("foreign room", forbidden)
		case !k.rooms[m.Room]:
			ack("not joined", forbidden)
		case strings.TrimSpace(m.Text) == "":
			ack("invalid message", sioError{"invalid"})
		default:
			a.lastMsg++
			msg := &sioMessage{ID: a.lastMsg, Room: m.Room, User: k.user, Text: m.Text, CreatedAt: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")}
			a.messages[msg.ID] = msg
			ack("messages answered", struct {
				ID int `json:"id"`
			}{msg.ID})
			a.broadcast(m.Room, "message", msg)
		}
	case "edit":
		var m struct {
			ID   int    `json:"id"`
			Text string `json:"text"`
		}
		ok := arg(&m)
		switch msg := a.messages[m.ID]; {
		case !ok || msg != nil && msg.User == k.user && strings.TrimSpace(m.Text) == "":
			ack("invalid message", sioError{"invalid"})
		case msg == nil:
			ack("missing message", missing)
		case msg.User != k.user:
			ack("foreign message", forbidden)
		default:
			msg.Text, msg.Edited = m.Text, true
			ack("edits", msg)
			a.broadcast(msg.Room, "edited", msg)
		}
	default:
		a.Counts.Add("unknown event", 1)
	}
}
