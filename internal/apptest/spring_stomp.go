package apptest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The STOMP side of SpringBoard: StompSubProtocolHandler, the inbound
// channel's interceptors (Spring Security's CSRF and authorization, the
// app's receipts), the @MessageMapping controller and the simple broker.

const (
	springSendFailed  = "Failed to send message to ExecutorSubscribableChannel[clientInboundChannel]"
	springBufferLimit = 64 * 1024          // StompSubProtocolHandler's messageSizeLimit
	springMaxText     = 16*1024 + 256      // MINIMUM_WEBSOCKET_MESSAGE_SIZE, above Tomcat's 8 KiB
	springJSON        = "application/json" // MappingJackson2MessageConverter's
)

// springConn is one WebSocket session.
type springConn struct {
	a    *SpringBoard
	ws   *websocket.Conn
	wmu  sync.Mutex // one writer at a time
	id   string     // the WebSocket session id: a UUID
	user string     // the handshake's principal
	csrf string     // the raw token CsrfTokenHandshakeInterceptor copied

	// Under a.mu:
	buf       []byte            // BufferingStompDecoder's chunks
	connected bool              // StompSubProtocolHandler's SessionInfo
	brokered  bool              // the simple broker's SessionInfo
	subs      map[string]string // subscription id → destination
	closing   bool              // an ERROR was sent: only the close reply is awaited
}

// springOut is a frame to write once the lock is let go, and whether to
// close the session after it (with 1002, PROTOCOL_ERROR).
type springOut struct {
	to    *springConn
	frame []byte
	close bool
}

// handshake is /ws: WebSocketHttpRequestHandler's interceptors
// (OriginHandshakeInterceptor, CsrfTokenHandshakeInterceptor), then
// AbstractHandshakeHandler.doHandshake.
func (c *springCall) handshake() {
	r, h := c.r, c.w.Header()
	if o := r.Header.Get("Origin"); o != "" && !springSameOrigin(o, r) {
		c.a.Counts.Add("403 origin", 1)
		h.Set("Content-Length", "0")
		c.w.WriteHeader(http.StatusForbidden)
		return
	}
	csrf, _ := c.csrfToken()
	refuse := func(status int, body string) {
		c.a.Counts.Add("400 handshake", 1)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		c.w.WriteHeader(status)
		_, _ = c.w.Write([]byte(body))
	}
	var conn []string
	for _, v := range r.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			conn = append(conn, strings.TrimSpace(t))
		}
	}
	switch {
	case r.Method != http.MethodGet:
		h.Set("Allow", "GET,CONNECT")
		refuse(http.StatusMethodNotAllowed, "")
	case !strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
		refuse(http.StatusBadRequest, `Can "Upgrade" only to "WebSocket".`)
	case !slices.Contains(conn, "Upgrade") && !slices.Contains(conn, "upgrade"):
		refuse(http.StatusBadRequest, `"Connection" must be "upgrade".`)
	case r.Header.Get("Sec-WebSocket-Key") == "":
		refuse(http.StatusBadRequest, "")
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		h.Set("Sec-WebSocket-Version", "13")
		refuse(http.StatusUpgradeRequired, "")
	default:
		hdr := http.Header{}
		for _, sh := range springSecurityHeaders {
			hdr.Set(sh[0], sh[1])
		}
		for _, p := range websocket.Subprotocols(r) { // selectProtocol: the client's order
			if slices.Contains([]string{"v10.stomp", "v11.stomp", "v12.stomp"}, strings.ToLower(p)) {
				hdr.Set("Sec-WebSocket-Protocol", p)
				break
			}
		}
		user := c.user()
		c.after = func() { c.a.serveWS(c.w, r, hdr, user, csrf) }
	}
}

// springSameOrigin is WebUtils.isSameOrigin: the Origin's scheme, host and
// port are the request's.
func springSameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" {
		return false
	}
	port := func(h string) string {
		if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
			return h[i+1:]
		}
		return "80"
	}
	host := func(h string) string {
		if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
			return strings.ToLower(h[:i])
		}
		return strings.ToLower(h)
	}
	return host(u.Host) == host(r.Host) && port(u.Host) == port(r.Host)
}

func (a *SpringBoard) serveWS(w http.ResponseWriter, r *http.Request, hdr http.Header, user, csrf string) {
	ws, err := a.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		return
	}
	x := &springConn{a: a, ws: ws, id: springUUID(), user: user, csrf: csrf, subs: map[string]string{}}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		ws.Close()
		return
	}
	a.conns[x] = true
	a.wg.Add(1)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.conns, x)
		a.mu.Unlock()
		ws.Close()
		a.wg.Done()
	}()
	ws.SetReadLimit(springMaxText)
	for {
		mt, data, err := ws.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) { // Tomcat closes with 1009
			a.Counts.Add("stomp bad frame", 1)
		}
		if err != nil {
			return
		}
		if mt != websocket.TextMessage && mt != websocket.BinaryMessage {
			continue
		}
		a.flush(x.receive(data))
	}
}

// flush writes frames in order, each whole.
func (a *SpringBoard) flush(out []springOut) {
	for _, o := range out {
		o.to.wmu.Lock()
		_ = o.to.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_ = o.to.ws.WriteMessage(websocket.TextMessage, o.frame)
		if o.close {
			_ = o.to.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseProtocolError, ""), time.Now().Add(time.Second))
			_ = o.to.ws.SetReadDeadline(time.Now().Add(5 * time.Second)) // for the close reply
		}
		o.to.wmu.Unlock()
	}
}

// receive is handleMessageFromClient: decode what came, then hand each
// frame to the inbound channel.
func (x *springConn) receive(data []byte) []springOut {
	x.a.mu.Lock()
	defer x.a.mu.Unlock()
	if x.closing {
		return nil
	}
	x.buf = append(x.buf, data...)
	if len(x.buf) > springBufferLimit {
		return x.fail("stomp bad frame", fmt.Sprintf("The configured STOMP buffer size limit of %d bytes has been exceeded", springBufferLimit))
	}
	frames, rest, err := springDecode(x.buf)
	if err != nil {
		return x.fail("stomp bad frame", err.Error())
	}
	x.buf = append([]byte(nil), rest...)
	var out []springOut
	for _, f := range frames {
		o, ok := x.handle(f)
		if out = append(out, o...); !ok {
			break
		}
	}
	return out
}

// fail counts a refusal and answers as sendErrorMessage does: an ERROR
// with the exception's message, then the session closed.
func (x *springConn) fail(count, message string) []springOut {
	if count != "" {
		x.a.Counts.Add(count, 1)
	}
	x.closing = true
	return []springOut{{x, springEncode("ERROR", [][2]string{{"message", message}}, nil), true}}
}

// handle is one frame's way: the session check, the interceptors' preSend,
// then the handlers (annotated methods, the broker), then the receipt
// interceptor's afterMessageHandled. It is false when the session ends.
func (x *springConn) handle(f springFrame) ([]springOut, bool) {
	isConnect := f.cmd == "CONNECT" || f.cmd == "STOMP"
	switch {
	case isConnect && x.connected:
		return x.fail("stomp bad frame", "Session already exists"), false
	case isConnect:
		x.connected = true
	case !x.connected:
		return x.fail("stomp bad frame", "Unknown session: "+x.id), false
	}
	if f.cmd == "" { // a heartbeat
		return nil, true
	}
	if isConnect { // XorCsrfChannelInterceptor
		token, _ := f.get(springCSRFHeader)
		if subtle.ConstantTimeCompare([]byte(springUnmask(token, x.csrf)), []byte(x.csrf)) != 1 {
			x.connected = false
			return x.fail("stomp csrf", springSendFailed), false
		}
	}
	if count := x.authorize(f); count != "" { // AuthorizationChannelInterceptor
		x.connected = false
		return x.fail(count, springSendFailed), false
	}
	var out []springOut
	handled := true
	switch f.cmd {
	case "CONNECT", "STOMP":
		return x.connect(f), true
	case "DISCONNECT":
		return x.disconnect(f)
	case "SUBSCRIBE":
		x.subscribe(f)
	case "UNSUBSCRIBE":
		if id, ok := f.get("id"); ok {
			delete(x.subs, id)
		}
	case "SEND", "MESSAGE":
		out, handled = x.message(f)
	default: // ACK, NACK, BEGIN, COMMIT, ABORT, or a server's command: nobody's
		x.a.Counts.Add("stomp dropped", 1)
	}
	if r, ok := f.get("receipt"); ok && handled {
		out = append(out, x.receipt(r))
	}
	return out, true
}

func (x *springConn) receipt(id string) springOut {
	x.a.Counts.Add("receipts", 1)
	return springOut{to: x, frame: springEncode("RECEIPT", [][2]string{{"receipt-id", id}}, nil)}
}

// authorize is the MessageMatcherDelegatingAuthorizationManager: the
// count of the refusal, or "" if the frame may pass.
func (x *springConn) authorize(f springFrame) string {
	dest, ok := f.get("destination")
	if !ok { // nullDestMatcher().authenticated()
		return ""
	}
	sub, msg := f.cmd == "SUBSCRIBE", f.cmd == "SEND" || f.cmd == "MESSAGE"
	if id, ok := strings.CutPrefix(dest, "/topic/boards."); ok && sub && !strings.Contains(id, "/") {
		return x.owner(id)
	}
	if rest, ok := strings.CutPrefix(dest, "/app/boards/"); ok && (sub || msg) {
		id, _, _ := strings.Cut(rest, "/")
		return x.owner(id)
	}
	return "stomp denied" // anyMessage().denyAll()
}

// owner is the board access check on {id}.
func (x *springConn) owner(id string) string {
	n, err := strconv.ParseInt(id, 10, 64)
	b := x.a.boards[int(n)]
	switch {
	case err != nil || n < 1 || n > 1<<31 || b == nil:
		return "stomp missing"
	case b.owner != x.user:
		return "stomp foreign"
	}
	return ""
}

// connect is the simple broker's CONNECT_ACK as StompSubProtocolHandler
// turns it into CONNECTED: the best version of accept-version, no
// heartbeats, and the user's name.
func (x *springConn) connect(f springFrame) []springOut {
	x.brokered = true
	accept, _ := f.get("accept-version")
	versions := map[string]bool{}
	for _, v := range strings.Split(accept, ",") {
		if v != "" {
			versions[v] = true
		}
	}
	for _, v := range []string{"1.2", "1.1", "1.0"} {
		if versions[v] {
			return []springOut{{to: x, frame: springEncode("CONNECTED", [][2]string{{"version", v}, {"heart-beat", "0,0"}, {"user-name", x.user}}, nil)}}
		}
	}
	// IllegalArgumentException("Unsupported STOMP version") on the way
	// out: logged, and nothing sent.
	x.a.Counts.Add("stomp bad frame", 1)
	return nil
}

// disconnect is the broker's DISCONNECT_ACK: a RECEIPT if one was asked
// for, else ERROR "Session closed." and the session closed.
func (x *springConn) disconnect(f springFrame) ([]springOut, bool) {
	x.brokered = false
	clear(x.subs)
	if r, ok := f.get("receipt"); ok {
		return []springOut{x.receipt(r)}, true
	}
	return x.fail("", "Session closed."), false
}

// subscribe is the broker's registerSubscription, for its /topic prefix.
func (x *springConn) subscribe(f springFrame) {
	dest, okDest := f.get("destination")
	id, okID := f.get("id")
	if !okDest || !okID || !strings.HasPrefix(dest, "/topic") {
		x.a.Counts.Add("stomp dropped", 1)
		return
	}
	x.subs[id] = dest
}

// springEvent is the controller's CardEvent, as Jackson writes it.
type springEvent struct {
	Event    string `json:"event"`
	ID       int    `json:"id"`
	BoardID  int    `json:"boardId"`
	Title    string `json:"title"`
	Column   string `json:"column"`
	Position int    `json:"position"`
}

// springSnakeEvent is springEvent as Jackson writes it with the SNAKE_CASE
// naming strategy.
type springSnakeEvent struct {
	Event    string `json:"event"`
	ID       int    `json:"id"`
	BoardID  int    `json:"board_id"`
	Title    string `json:"title"`
	Column   string `json:"column"`
	Position int    `json:"position"`
}

// message is a SEND: to the controller's @MessageMapping methods under
// /app. It is false when the method threw (nothing is sent then).
func (x *springConn) message(f springFrame) ([]springOut, bool) {
	dest, ok := f.get("destination")
	path, app := strings.CutPrefix(dest, "/app/")
	segs := strings.Split(path, "/")
	if !ok || !app || len(segs) < 3 || segs[0] != "boards" || segs[2] != "cards" || len(segs) != 3 && (len(segs) != 5 || segs[4] != "move") {
		x.a.Counts.Add("stomp dropped", 1)
		return nil, true
	}
	board, _ := strconv.Atoi(segs[1]) // authorized: a board of the user's
	var body struct {
		Title  string `json:"title"`
		Column string `json:"column"`
	}
	if ct, ok := f.get("content-type"); ok { // the converter takes JSON only
		mt, _, err := mime.ParseMediaType(ct)
		isJSON := mt == springJSON || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
		if err != nil || !isJSON {
			x.a.Counts.Add("stomp invalid", 1)
			return nil, false
		}
	}
	if json.Unmarshal(f.body, &body) != nil {
		x.a.Counts.Add("stomp invalid", 1)
		return nil, false
	}
	var k *springCard
	id := 0
	if len(segs) == 3 { // addCard(@DestinationVariable boardId, @Valid CardForm)
		if strings.TrimSpace(body.Title) == "" {
			x.a.Counts.Add("stomp invalid", 1)
			return nil, false
		}
		n := 0
		for _, c := range x.a.cards {
			if c.board == board {
				n++
			}
		}
		x.a.lastCard++
		id, k = x.a.lastCard, &springCard{board: board, title: body.Title, column: "todo", position: n}
		x.a.cards[id] = k
		x.a.Counts.Add("cards added", 1)
	} else { // moveCard(boardId, cardId, @Valid MoveForm)
		n, err := strconv.Atoi(segs[3])
		if k = x.a.cards[n]; err != nil || k == nil || k.board != board {
			x.a.Counts.Add("stomp missing", 1) // NoSuchElementException, logged
			x.a.tb.Logf("spring app: %s moved card %s of board %d, which is not on it", x.user, segs[3], board)
			return nil, false
		}
		if !slices.Contains([]string{"todo", "doing", "done"}, body.Column) {
			x.a.Counts.Add("stomp invalid", 1)
			return nil, false
		}
		id, k.column = n, body.Column
		x.a.Counts.Add("cards moved", 1)
	}
	ev := springEvent{Event: map[bool]string{true: "added", false: "moved"}[len(segs) == 3], ID: id, BoardID: board, Title: k.title,
		Column: k.column, Position: k.position}
	var b bytes.Buffer
	enc := json.NewEncoder(&b) // Jackson does not escape <, > and &
	enc.SetEscapeHTML(false)
	if x.a.change.SnakeCase {
		_ = enc.Encode(springSnakeEvent(ev))
		x.a.Counts.Add("build: snake case", 1)
	} else {
		_ = enc.Encode(ev)
	}
	return x.a.broadcast("/topic/boards."+strconv.Itoa(board), bytes.TrimSuffix(b.Bytes(), []byte("\n"))), true
}

// broadcast is the simple broker's sendMessageToSubscribers: a MESSAGE for
// each subscription to dest, with a message-id of the receiving session.
func (a *SpringBoard) broadcast(dest string, payload []byte) []springOut {
	var out []springOut
	for y := range a.conns {
		if !y.brokered || y.closing {
			continue
		}
		for _, sub := range slices.Sorted(func(yield func(string) bool) {
			for id, d := range y.subs {
				if d == dest && !yield(id) {
					return
				}
			}
		}) {
			mid := y.id + "-" + strconv.FormatInt(a.messageID, 10)
			a.messageID++
			out = append(out, springOut{to: y, frame: springEncode("MESSAGE", [][2]string{{"destination", dest},
				{"content-type", springJSON}, {"subscription", sub}, {"message-id", mid}}, payload)})
		}
	}
	return out
}

// springFrame is a decoded STOMP frame; cmd "" is a heartbeat.
type springFrame struct {
	cmd  string
	hdr  [][2]string
	body []byte
}

// get is getFirstNativeHeader: the first value, by exact name.
func (f springFrame) get(name string) (string, bool) {
	for _, h := range f.hdr {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// springEncode is StompEncoder.encode: headers escaped but for CONNECT,
// STOMP and CONNECTED; content-length last for the frames with a body.
func springEncode(cmd string, hdr [][2]string, body []byte) []byte {
	var b bytes.Buffer
	escape := cmd != "CONNECT" && cmd != "STOMP" && cmd != "CONNECTED"
	b.WriteString(cmd + "\n")
	for _, h := range hdr {
		k, v := h[0], h[1]
		if escape {
			k, v = springEscape(k), springEscape(v)
		}
		b.WriteString(k + ":" + v + "\n")
	}
	if cmd == "SEND" || cmd == "MESSAGE" || cmd == "ERROR" {
		fmt.Fprintf(&b, "content-length:%d\n", len(body))
	}
	b.WriteByte('\n')
	b.Write(body)
	b.WriteByte(0)
	return b.Bytes()
}

func springEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, ":", `\c`, "\n", `\n`, "\r", `\r`).Replace(s)
}

type springDecodeError string

func (e springDecodeError) Error() string { return string(e) }

// springUnescape is StompDecoder.unescape.
func springUnescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", springDecodeError(fmt.Sprintf("Illegal escape sequence at index %d: %s", i, s))
		}
		switch s[i+1] {
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		case 'c':
			b.WriteByte(':')
		case '\\':
			b.WriteByte('\\')
		default:
			return "", springDecodeError(fmt.Sprintf("Illegal escape sequence at index %d: %s", i, s))
		}
		i++
	}
	return b.String(), nil
}

var springCommands = map[string]bool{ //nolint:gochecknoglobals // StompCommand's values
	"STOMP": true, "CONNECT": true, "DISCONNECT": true, "SUBSCRIBE": true, "UNSUBSCRIBE": true, "SEND": true, "ACK": true,
	"NACK": true, "BEGIN": true, "COMMIT": true, "ABORT": true, "CONNECTED": true, "RECEIPT": true, "MESSAGE": true, "ERROR": true,
}

// springEOL is tryConsumeEndOfLine at b[i]: the length of the EOL there.
func springEOL(b []byte, i int) (int, error) {
	switch {
	case i >= len(b):
		return 0, nil
	case b[i] == '\n':
		return 1, nil
	case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
		return 2, nil
	case b[i] == '\r':
		return 0, springDecodeError(`'\r' must be followed by '\n'`)
	}
	return 0, nil
}

func springSkipEOL(b []byte, i int) (int, error) {
	for {
		n, err := springEOL(b, i)
		if err != nil || n == 0 {
			return i, err
		}
		i += n
	}
}

// springLine reads up to an EOL: the line, where it ends, and whether an
// EOL ended it.
func springLine(b []byte, i int) (string, int, bool, error) {
	start := i
	for i < len(b) {
		n, err := springEOL(b, i)
		if err != nil {
			return "", i, false, err
		}
		if n > 0 {
			return string(b[start:i]), i + n, true, nil
		}
		i++
	}
	return string(b[start:]), i, false, nil
}

// springDecode is StompDecoder.decode over what BufferingStompDecoder
// holds: the whole frames at the start of b, and what is left of it (an
// incomplete frame).
func springDecode(b []byte) ([]springFrame, []byte, error) {
	var frames []springFrame
	pos := 0
	for pos < len(b) {
		f, n, err := springDecodeOne(b, pos)
		if err != nil {
			return nil, nil, err
		}
		if n == pos {
			break
		}
		frames = append(frames, f)
		if pos, err = springSkipEOL(b, n); err != nil {
			return nil, nil, err
		}
	}
	return frames, b[pos:], nil
}

// springDecodeOne is decodeMessage at b[pos:]: the frame and where it
// ends, or pos again for an incomplete one.
func springDecodeOne(b []byte, pos int) (springFrame, int, error) {
	i, err := springSkipEOL(b, pos)
	if err != nil {
		return springFrame{}, 0, err
	}
	cmd, i, _, err := springLine(b, i)
	if err != nil {
		return springFrame{}, 0, err
	}
	if cmd == "" {
		return springFrame{}, i, nil // a heartbeat
	}
	if i >= len(b) {
		return springFrame{}, pos, nil
	}
	if !springCommands[cmd] {
		return springFrame{}, 0, springDecodeError("No enum constant org.springframework.messaging.simp.stomp.StompCommand." + cmd)
	}
	f := springFrame{cmd: cmd}
	unescape := cmd != "CONNECT" && cmd != "CONNECTED" && cmd != "STOMP"
	for {
		line, next, complete, err := springLine(b, i)
		if err != nil {
			return springFrame{}, 0, err
		}
		if !complete { // Java reads on to the end, and finds no payload
			return springFrame{}, pos, nil
		}
		if i = next; line == "" {
			break
		}
		k, v, found := strings.Cut(line, ":")
		if !found || k == "" {
			if i < len(b) {
				return springFrame{}, 0, springDecodeError("Illegal header: '" + line + "'. A header must be of the form <name>:[<value>].")
			}
			continue
		}
		if unescape {
			if k, err = springUnescape(k); err == nil {
				v, err = springUnescape(v)
			}
			if err != nil {
				return springFrame{}, 0, err
			}
		}
		if k == "content-type" && i < len(b) { // MimeTypeUtils.parseMimeType
			if v == "" {
				return springFrame{}, 0, springDecodeError(`Invalid mime type "": 'mimeType' must not be empty`)
			}
			if !strings.Contains(v, "/") {
				return springFrame{}, 0, springDecodeError(`Invalid mime type "` + v + `": does not contain '/'`)
			}
		}
		f.hdr = append(f.hdr, [2]string{k, v})
	}
	cl := -1
	if v, ok := f.get("content-length"); ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= 0 {
			cl = int(n)
		}
	}
	switch {
	case cl >= 0 && len(b)-i > cl:
		f.body = b[i : i+cl]
		if i += cl; b[i] != 0 {
			return springFrame{}, 0, springDecodeError("Frame must be terminated with a null octet")
		}
		i++
	case cl >= 0:
		return springFrame{}, pos, nil
	default:
		end := bytes.IndexByte(b[i:], 0)
		if end < 0 {
			return springFrame{}, pos, nil
		}
		f.body, i = b[i:i+end], i+end+1
	}
	if len(f.body) > 0 && cmd != "SEND" && cmd != "MESSAGE" && cmd != "ERROR" {
		return springFrame{}, 0, springDecodeError(fmt.Sprintf("%s shouldn't have a payload: length=%d, headers={}", cmd, len(f.body)))
	}
	f.body = append([]byte(nil), f.body...)
	return f, i, nil
}
