package apptest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The SignalR side of the SignalR app: Http.Connections' dispatcher
// (negotiate, the WebSocket transport and the other transports' refusals),
// the hub connection (handshake, keep-alive, client timeout, close) and the
// JSON hub protocol, and the TasksHub's methods.

const (
	signalrRS          = 0x1e      // the record separator that ends each message
	signalrMaxMessage  = 32 * 1024 // HubOptions.MaximumReceiveMessageSize
	signalrClosedError = "Connection closed with an error."
	signalrPing        = "{\"type\":6}\x1e"
	signalrClose       = "{\"type\":7}\x1e"
	signalrEpoch       = "Thu, 01 Jan 1970 00:00:00 GMT"
)

// signalrTransports is the negotiate response's availableTransports, as
// HttpConnectionDispatcher's three AvailableTransport values write.
const signalrTransports = `[{"transport":"WebSockets","transferFormats":["Text","Binary"]},` +
	`{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]`

// signalrMethods are TasksHub's methods and their parameters, as
// DefaultHubDispatcher discovers them.
var signalrMethods = map[string][]string{ //nolint:gochecknoglobals // constant table
	"JoinList": {"int"}, "AddTask": {"int", "string"}, "CompleteTask": {"int"},
}

// signalrNewID is HttpConnectionManager.MakeNewConnectionId: 16 random
// bytes, base64url without padding.
func signalrNewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signalrString is a JSON string as SignalR's Utf8JsonWriter writes it
// (JavaScriptEncoder.UnsafeRelaxedJsonEscaping): quotes, backslashes and
// control characters escaped, the rest as it is.
func signalrString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String() + `"`
}

// signalrQuery is a query value as ASP.NET Core reads it: the name in any
// case, several values joined by commas (StringValues.ToString).
func signalrQuery(q url.Values, name string) (string, bool) {
	var vals []string
	for k, v := range q {
		if strings.EqualFold(k, name) {
			vals = append(vals, v...)
		}
	}
	return strings.Join(vals, ","), len(vals) > 0
}

// signalrInt is int.TryParse with NumberStyles.Integer: white space around,
// a sign, decimal digits.
func signalrInt(s string) (int, bool) {
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(s), "+"), 10, 32)
	return int(n), err == nil && !strings.HasPrefix(strings.TrimSpace(s), "+-")
}

// negotiate is HttpConnectionDispatcher.ProcessNegotiate.
func (c *signalrCall) negotiate() {
	if c.r.Method != http.MethodPost {
		c.a.refuse("405 method", "%s negotiate", c.r.Method)
		c.core.send(http.StatusMethodNotAllowed, "text/plain", "")
		return
	}
	version, errText := 0, ""
	if v, ok := signalrQuery(c.r.URL.Query(), "negotiateVersion"); ok {
		n, isInt := signalrInt(v)
		switch {
		case !isInt:
			errText = "The client requested a non-integer protocol version."
		case n < 0: // MinimumProtocolVersion
			errText = fmt.Sprintf("The client requested version '%d', but the server does not support this version.", n)
		default:
			version = min(n, 1)
		}
	}
	if errText != "" {
		c.a.refuse("negotiate refused", "%s", errText)
		c.core.send(http.StatusOK, "application/json", `{"error":`+signalrString(errText)+`}`)
		return
	}
	now := time.Now()
	for token, p := range c.a.pending { // the manager's scan of unused connections
		if !p.open && now.Sub(p.made) > c.a.disconnectTimeout {
			delete(c.a.pending, token)
		}
	}
	id := signalrNewID()
	token, body := id, fmt.Sprintf(`{"negotiateVersion":%d,"connectionId":"%s",`, version, id)
	if version > 0 {
		token = signalrNewID()
		body += `"connectionToken":"` + token + `",`
	}
	c.a.pending[token] = &signalrPending{id: id, user: c.user().id, made: now}
	c.a.Counts.Add("negotiations", 1)
	c.core.send(http.StatusOK, "application/json", body+`"availableTransports":`+signalrTransports+`}`)
}

// connection is GetConnectionAsync: the dispatcher's connection of the
// request's id, or an answer of 400 (no id) or 404 (none such).
func (c *signalrCall) connection(contentType string) (string, *signalrPending) {
	token, _ := signalrQuery(c.r.URL.Query(), "id")
	p := c.a.pending[token]
	if p != nil && !p.open && time.Since(p.made) > c.a.disconnectTimeout {
		delete(c.a.pending, token)
		p = nil
	}
	switch {
	case token == "" && contentType != "":
		c.a.refuse("400 connection id", "%s %s", c.r.Method, c.r.URL)
		c.core.send(http.StatusBadRequest, contentType, "Connection ID required")
	case p == nil:
		c.a.refuse("unknown connection", "%s %s", c.r.Method, c.r.URL)
		if contentType == "" {
			c.w.Header()["Content-Type"] = nil // as Kestrel: none, not sniffed
		}
		c.core.send(http.StatusNotFound, contentType, "No Connection with that ID")
	default:
		return token, p
	}
	return "", nil
}

// dispatch is HttpConnectionDispatcher.ExecuteAsync for /hubs/tasks.
func (c *signalrCall) dispatch() {
	h := c.w.Header()
	switch c.r.Method {
	case http.MethodGet, http.MethodConnect:
	case http.MethodPost: // ProcessSend
		if _, p := c.connection("text/plain"); p != nil && p.open {
			c.a.refuse("405 method", "a POST to a WebSocket connection")
			c.core.send(http.StatusMethodNotAllowed, "text/plain", "POST requests are not allowed for WebSocket connections.")
		} else if p != nil {
			c.refuseTransport("LongPolling")
		}
		return
	case http.MethodDelete: // ProcessDeleteAsync: only for long polling
		if _, p := c.connection("text/plain"); p != nil {
			c.a.refuse("transport refused", "a DELETE")
			c.core.send(http.StatusBadRequest, "text/plain", "Cannot terminate this connection using the DELETE endpoint.")
		}
		return
	default:
		c.a.refuse("405 method", "%s %s", c.r.Method, c.r.URL.Path)
		c.core.send(http.StatusMethodNotAllowed, "text/plain", "")
		return
	}
	if !websocket.IsWebSocketUpgrade(c.r) {
		transport := "LongPolling"
		for _, part := range strings.Split(strings.Join(c.r.Header.Values("Accept"), ","), ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
				transport = "ServerSentEvents"
			}
		}
		if transport == "LongPolling" { // AddNoCacheHeaders
			h.Set("Cache-Control", "no-cache, no-store")
			h.Set("Pragma", "no-cache")
			h.Set("Expires", signalrEpoch)
		}
		if _, p := c.connection("text/plain"); p != nil {
			c.refuseTransport(transport)
		}
		return
	}
	// GetOrCreateConnectionAsync: without an id, a connection of its own
	// (skipNegotiation); the 404 of this path has no Content-Type.
	token, _ := signalrQuery(c.r.URL.Query(), "id")
	var p *signalrPending
	if token == "" {
		token = signalrNewID()
		p = &signalrPending{id: token, user: c.user().id, made: time.Now()}
		c.a.pending[token] = p
	} else if _, p = c.connection(""); p == nil {
		return
	}
	if p.open { // TrySetTransport: AlreadyActive
		c.a.refuse("409 connection active", "a second WebSocket for %s", token)
		c.core.send(http.StatusConflict, "text/plain", "")
		return
	}
	if p.user != c.user().id { // only logged (UserNameChanged)
		c.a.refuse("user changed", "%s negotiated, %s connects", p.user, c.user().email)
	}
	p.open = true
	user := c.user()
	c.after = func() { c.a.serveWS(c.w, c.r, token, user) }
}

// refuseTransport answers a transport this app does not imitate as a hub
// mapped without it does.
func (c *signalrCall) refuseTransport(transport string) {
	c.a.refuse("transport refused", "%s %s", transport, c.r.URL)
	c.core.send(http.StatusNotFound, "text/plain", transport+" transport not supported by this end point type")
}

// signalrConn is one hub connection on a WebSocket.
type signalrConn struct {
	a     *SignalR
	ws    *websocket.Conn
	token string
	user  *aspnetUser
	done  chan struct{} // closed when the connection ends
	live  atomic.Bool   // handshaken and not closing: the keep-alive may ping

	wmu       sync.Mutex // one writer at a time
	lastSend  time.Time
	sentClose bool

	// Under a.mu:
	buf        []byte // what came and is not a whole message yet
	handshaken bool
	closing    bool // the server closes it: only the client's close is awaited
}

// signalrOut is a WebSocket message for a connection, written once the lock
// is let go, and whether the server then closes the WebSocket.
type signalrOut struct {
	to    *signalrConn
	data  []byte
	close bool
}

// serveWS is the WebSocket transport and HubConnectionHandler.OnConnectedAsync.
func (a *SignalR) serveWS(w http.ResponseWriter, r *http.Request, token string, user *aspnetUser) {
	ws, err := a.upgrader.Upgrade(w, r, http.Header{"Server": {"Kestrel"}})
	if err != nil {
		a.mu.Lock()
		delete(a.pending, token)
		a.mu.Unlock()
		return
	}
	x := &signalrConn{a: a, ws: ws, token: token, user: user, done: make(chan struct{}), lastSend: time.Now()}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		ws.Close()
		return
	}
	a.conns[x] = true
	a.wg.Add(2)
	a.Counts.Add("connections", 1)
	deadline, keepAlive := a.handshakeTimeout, a.keepAlive
	a.mu.Unlock()
	go x.keepAlive(keepAlive)
	defer func() {
		a.mu.Lock()
		delete(a.conns, x)
		delete(a.pending, token) // DisposeAndRemoveAsync: the token is gone
		for name, g := range a.groups {
			if delete(g, x); len(g) == 0 {
				delete(a.groups, name)
			}
		}
		a.mu.Unlock()
		close(x.done)
		ws.Close()
		a.wg.Done()
	}()
	// The transport answers a client's close with its own, 1000.
	ws.SetCloseHandler(func(int, string) error {
		x.writeClose()
		return nil
	})
	ws.SetReadLimit(1 << 20)
	for {
		_ = ws.SetReadDeadline(time.Now().Add(deadline))
		_, data, err := ws.ReadMessage()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			a.flush(x.timedOut())
			return
		}
		if err != nil {
			return
		}
		var out []signalrOut
		out, deadline = x.receive(data)
		a.flush(out)
	}
}

// flush writes each message whole, in order.
func (a *SignalR) flush(out []signalrOut) {
	for _, o := range out {
		o.to.write(o.data, o.close)
	}
}

// write sends one WebSocket message, and the close after it if asked.
func (x *signalrConn) write(data []byte, closing bool) {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if x.sentClose {
		return
	}
	_ = x.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = x.ws.WriteMessage(websocket.TextMessage, data)
	x.lastSend = time.Now()
	if closing {
		x.sentClose = true
		_ = x.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}
}

// writeClose sends the transport's close (NormalClosure), once.
func (x *signalrConn) writeClose() {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if !x.sentClose {
		x.sentClose = true
		_ = x.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}
}

// keepAlive is HubConnectionContext.KeepAliveTick on the server's
// heartbeat: a ping when nothing was sent for the interval.
func (x *signalrConn) keepAlive(every time.Duration) {
	defer x.a.wg.Done()
	t := time.NewTicker(min(every/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-x.done:
			return
		case <-t.C:
		}
		x.wmu.Lock()
		if x.live.Load() && !x.sentClose && time.Since(x.lastSend) >= every {
			_ = x.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_ = x.ws.WriteMessage(websocket.TextMessage, []byte(signalrPing))
			x.lastSend = time.Now()
		}
		x.wmu.Unlock()
	}
}

// end makes the connection's last message: the server closes after it.
func (x *signalrConn) end(data string) []signalrOut {
	x.closing = true
	x.live.Store(false)
	return []signalrOut{{to: x, data: []byte(data), close: true}}
}

// timedOut is the handshake's timeout, or ClientTimeoutInterval's.
func (x *signalrConn) timedOut() []signalrOut {
	x.a.mu.Lock()
	defer x.a.mu.Unlock()
	switch {
	case x.closing:
		return nil
	case !x.handshaken:
		x.a.refuse("handshake refused", "no handshake from %s", x.user.email)
		return x.end(`{"error":"Handshake was canceled."}` + "\x1e")
	}
	x.a.refuse("client timeouts", "nothing from %s", x.user.email)
	return x.end(`{"type":7,"error":"` + signalrClosedError + `","allowReconnect":true}` + "\x1e")
}

// receive takes what a WebSocket message brought: the handshake first,
// then hub messages. It returns what to send, and how long the next read
// may wait.
func (x *signalrConn) receive(data []byte) ([]signalrOut, time.Duration) {
	x.a.mu.Lock()
	defer x.a.mu.Unlock()
	if x.closing {
		return nil, 5 * time.Second // the client's close
	}
	x.buf = append(x.buf, data...)
	var out []signalrOut
	if !x.handshaken {
		i := bytes.IndexByte(x.buf, signalrRS)
		if i < 0 {
			return nil, x.a.handshakeTimeout
		}
		msg := x.buf[:i]
		x.buf = x.buf[i+1:]
		if errText := signalrHandshake(msg); errText != "" {
			x.a.refuse("handshake refused", "%q: %s", msg, errText)
			return x.end(`{"error":` + signalrString(errText) + "}\x1e"), 5 * time.Second
		}
		x.handshaken = true
		x.live.Store(true)
		x.a.Counts.Add("handshakes", 1)
		out = append(out, signalrOut{to: x, data: []byte("{}\x1e")})
	}
	for !x.closing {
		i := bytes.IndexByte(x.buf, signalrRS)
		if i >= signalrMaxMessage || i < 0 && len(x.buf) > signalrMaxMessage {
			x.a.refuse("hub bad message", "a message over %d bytes", signalrMaxMessage)
			out = append(out, x.end(`{"type":7,"error":"`+signalrClosedError+`"}`+"\x1e")...)
			break
		}
		if i < 0 {
			break
		}
		msg := x.buf[:i]
		x.buf = x.buf[i+1:]
		out = append(out, x.message(msg)...)
	}
	x.buf = slices.Clone(x.buf)
	if x.closing {
		return out, 5 * time.Second
	}
	return out, x.a.clientTimeout
}

// signalrHandshake is HandshakeProtocol.TryParseRequestMessage and the
// checks of HubConnectionContext.HandshakeAsync: the error to answer, or
// "".
func signalrHandshake(msg []byte) string {
	const unexpected = "An unexpected error occurred during connection handshake."
	var m map[string]json.RawMessage
	var protocol string
	var version int32
	if json.Unmarshal(msg, &m) != nil || m["protocol"] == nil || m["version"] == nil ||
		json.Unmarshal(m["protocol"], &protocol) != nil || string(m["protocol"]) == "null" || !signalrIsInt(m["version"]) ||
		json.Unmarshal(m["version"], &version) != nil {
		return unexpected
	}
	if !strings.EqualFold(protocol, "json") { // DefaultHubProtocolResolver: only json is added
		return fmt.Sprintf("The protocol '%s' is not supported.", protocol)
	}
	if version > 2 { // JsonHubProtocol.IsVersionSupported: version <= 2
		return fmt.Sprintf("The server does not support version %d of the '%s' protocol.", version, protocol)
	}
	return ""
}

var signalrIntRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// signalrIsInt is whether a JSON value is an integer as Utf8JsonReader's
// TryGetInt32 takes it: no fraction, no exponent, within int32.
func signalrIsInt(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	_, err := strconv.ParseInt(s, 10, 32)
	return signalrIntRE.MatchString(s) && err == nil
}

// signalrMessage is a hub message as JsonHubProtocol reads it.
type signalrMessage struct {
	typ          int
	invocationID string // "" if none
	target       string
	hasTarget    bool
	args         []json.RawMessage
	hasArgs      bool
}

// signalrInvalidData is an InvalidDataException of the protocol, with
// .NET's message (logged).
type signalrInvalidData string

func (e signalrInvalidData) Error() string { return string(e) }

// signalrParse is JsonHubProtocol.ParseMessage: an error is an
// InvalidDataException, which ends the connection.
func signalrParse(msg []byte) (signalrMessage, error) {
	var m signalrMessage
	var props map[string]json.RawMessage
	if err := json.Unmarshal(msg, &props); err != nil || props == nil {
		return m, signalrInvalidData("Error reading JSON.")
	}
	str := func(name string) (string, bool, error) {
		raw, ok := props[name]
		if !ok || string(raw) == "null" {
			return "", false, nil
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false, signalrInvalidDataf("Expected '%s' to be of type String.", name)
		}
		return s, true, nil
	}
	raw, ok := props["type"]
	if !ok {
		return m, signalrInvalidData("Missing required property 'type'.")
	}
	if !signalrIsInt(raw) {
		return m, signalrInvalidData("Expected 'type' to be of type Number.")
	}
	m.typ, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
	var err error
	if m.invocationID, _, err = str("invocationId"); err != nil {
		return m, err
	}
	if _, _, err = str("error"); err != nil {
		return m, err
	}
	if raw, ok := props["target"]; ok {
		if err := json.Unmarshal(raw, &m.target); err != nil || string(raw) == "null" {
			return m, signalrInvalidData("Expected 'target' to be of type String.")
		}
		m.hasTarget = true
	}
	if raw, ok := props["arguments"]; ok {
		if err := json.Unmarshal(raw, &m.args); err != nil || string(raw) == "null" {
			return m, signalrInvalidData("Expected 'arguments' to be of type Array.")
		}
		m.hasArgs = true
	}
	if raw, ok := props["allowReconnect"]; ok && string(raw) != "true" && string(raw) != "false" {
		return m, signalrInvalidData("Expected 'allowReconnect' to be of type Boolean.")
	}
	if raw, ok := props["headers"]; ok {
		var h map[string]string
		if json.Unmarshal(raw, &h) != nil || h == nil {
			return m, signalrInvalidData("Expected 'headers' to be of type Object.")
		}
	}
	need := func(ok bool, name string) error {
		if !ok {
			return signalrInvalidDataf("Missing required property '%s'.", name)
		}
		return nil
	}
	switch m.typ {
	case 1: // Invocation
		if err = need(m.hasTarget, "target"); err == nil {
			err = need(m.hasArgs, "arguments")
		}
	case 4: // StreamInvocation
		if err = need(m.hasTarget, "target"); err == nil {
			if err = need(m.invocationID != "", "invocationId"); err == nil {
				err = need(m.hasArgs, "arguments")
			}
		}
	case 2: // StreamItem
		if err = need(m.invocationID != "", "invocationId"); err == nil {
			_, has := props["item"]
			err = need(has, "item")
		}
	case 3: // Completion
		_, hasResult := props["result"]
		_, hasError := props["error"]
		if err = need(m.invocationID != "", "invocationId"); err == nil && hasResult && hasError && string(props["error"]) != "null" {
			err = signalrInvalidData("The 'error' and 'result' properties are mutually exclusive.")
		}
	case 5: // CancelInvocation
		err = need(m.invocationID != "", "invocationId")
	case 8, 9: // Ack, Sequence
		if err = need(props["sequenceId"] != nil, "sequenceId"); err == nil && !signalrIsLong(props["sequenceId"]) {
			err = signalrInvalidData("Expected 'sequenceId' to be of type Number.")
		}
	}
	return m, err
}

// signalrInvalidDataf is signalrInvalidData of a formatted message.
func signalrInvalidDataf(format string, args ...any) error {
	return signalrInvalidData(fmt.Sprintf(format, args...))
}

func signalrIsLong(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	_, err := strconv.ParseInt(s, 10, 64)
	return signalrIntRE.MatchString(s) && err == nil
}

// message is one hub message: DefaultHubDispatcher.DispatchMessageAsync.
func (x *signalrConn) message(msg []byte) []signalrOut {
	m, err := signalrParse(msg)
	if err != nil { // HubConnectionHandler: Log.ErrorProcessingRequest, then the close
		x.a.refuse("hub bad message", "%q: %v", msg, err)
		return x.end(`{"type":7,"error":"` + signalrClosedError + `"}` + "\x1e")
	}
	switch m.typ {
	case 1, 4:
		return x.invoke(m)
	case 7: // the client's graceful close: CloseMessage.Empty back, then the close
		x.a.Counts.Add("close messages", 1)
		return x.end(signalrClose)
	}
	// A ping, a completion or stream item nobody awaits, a cancel of no
	// stream, Ack and Sequence without stateful reconnect, a type of a
	// later protocol: nothing to answer.
	return nil
}

// signalrMethodName is the method of a target, matched as the
// dispatcher's dictionary matches (OrdinalIgnoreCase).
func signalrMethodName(target string) (string, bool) {
	for name := range signalrMethods {
		if strings.EqualFold(name, target) {
			return name, true
		}
	}
	return target, false
}

// signalrCompletion is a CompletionMessage: its result (JSON), or its error.
func signalrCompletion(id, result, errText string) string {
	if errText != "" {
		return `{"type":3,"invocationId":` + signalrString(id) + `,"error":` + signalrString(errText) + "}\x1e"
	}
	return `{"type":3,"invocationId":` + signalrString(id) + `,"result":` + result + "}\x1e"
}

// signalrSend is an InvocationMessage from the server: SendAsync of a
// client method with one argument, no invocationId.
func signalrSend(target, arg string) string {
	return `{"type":1,"target":` + signalrString(target) + `,"arguments":[` + arg + "]}\x1e"
}

// signalrTaskJSON is TaskDto(int Id, int ListId, string Title, bool Done)
// in camelCase.
func signalrTaskJSON(id int, t *signalrTask) string {
	return fmt.Sprintf(`{"id":%d,"listId":%d,"title":%s,"done":%t}`, id, t.list, signalrString(t.title), t.done)
}

// signalrBind is JsonHubProtocol.BindTypes: each argument as its
// parameter's type, as System.Text.Json reads it (an int from an integer
// number only, a string from a string or null).
func signalrBind(args []json.RawMessage, types []string) ([]any, error) {
	if len(args) != len(types) {
		return nil, signalrInvalidDataf("Invocation provides %d argument(s) but target expects %d.", len(args), len(types))
	}
	out := make([]any, len(args))
	for i, raw := range args {
		switch types[i] {
		case "int":
			if !signalrIsInt(raw) {
				return nil, signalrInvalidDataf("The JSON value could not be converted to System.Int32. Path: $ | LineNumber: 0 | BytePositionInLine: %d.", len(raw))
			}
			n, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
			out[i] = n
		case "string":
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, signalrInvalidData("The JSON value could not be converted to System.String.")
			}
			out[i] = s
		}
	}
	return out, nil
}

// invoke is an invocation: bound, dispatched to the hub's method, and
// answered with a completion if it has an invocationId.
func (x *signalrConn) invoke(m signalrMessage) []signalrOut {
	x.a.Counts.Add("invocations", 1)
	name, known := signalrMethodName(m.target)
	reply := func(result, errText string) []signalrOut {
		if m.invocationID == "" {
			return nil
		}
		return []signalrOut{{to: x, data: []byte(signalrCompletion(m.invocationID, result, errText))}}
	}
	if !known { // the binder's GetParameterTypes throws HubException
		x.a.refuse("hub unknown method", "%q", m.target)
		return reply("", fmt.Sprintf("Failed to invoke '%s' due to an error on the server. HubException: Method does not exist.", m.target))
	}
	args, err := signalrBind(m.args, signalrMethods[name])
	if err != nil { // InvocationBindingFailureMessage: no details without EnableDetailedErrors
		x.a.refuse("hub bad invocation", "%s: %v", name, err)
		return reply("", fmt.Sprintf("Failed to invoke '%s' due to an error on the server.", name))
	}
	if m.typ == 4 { // ValidateInvocationMode
		x.a.refuse("hub bad invocation", "a stream invocation of %s", name)
		return reply("", fmt.Sprintf("The client attempted to invoke the non-streaming '%s' method with a streaming invocation.", name))
	}
	id, _ := args[0].(int) // as signalrBind made them
	var group, target, payload, result, hubErr string
	switch name {
	case "JoinList":
		hubErr, result = x.joinList(id), "null"
	case "AddTask":
		title, _ := args[1].(*string)
		group, target, payload, hubErr = x.addTask(id, title)
		result = payload
	case "CompleteTask":
		group, target, payload, hubErr = x.completeTask(id)
		result = "true"
	}
	if hubErr != "" {
		return reply("", fmt.Sprintf("An unexpected error occurred invoking '%s' on the server. HubException: %s", name, hubErr))
	}
	// Clients.Group(group).SendAsync, then the completion: the caller's
	// pipe gets both before its transport sends, so one frame holds them.
	var out []signalrOut
	mine := ""
	for _, y := range x.a.members(group) {
		if y == x {
			mine = signalrSend(target, payload)
		} else {
			out = append(out, signalrOut{to: y, data: []byte(signalrSend(target, payload))})
		}
	}
	if m.invocationID != "" {
		mine += signalrCompletion(m.invocationID, result, "")
	}
	if mine != "" {
		out = append(out, signalrOut{to: x, data: []byte(mine)})
	}
	return out
}

// members are a group's connections that are not closing, in a stable
// order.
func (a *SignalR) members(group string) []*signalrConn {
	var out []*signalrConn
	for y := range a.groups[group] {
		if !y.closing {
			out = append(out, y)
		}
	}
	slices.SortFunc(out, func(p, q *signalrConn) int { return strings.Compare(p.token, q.token) })
	return out
}

// list is the hub's query of a list of the caller's: the HubException's
// message and count otherwise.
func (x *signalrConn) list(id int) (*signalrList, string) {
	l := x.a.lists[id]
	switch {
	case l == nil:
		x.a.refuse("hub missing", "list %d", id)
		return nil, "No such list"
	case l.owner != x.user.id:
		x.a.refuse("hub foreign", "list %d of another user's, for %s", id, x.user.email)
		return nil, "No such list"
	}
	return l, ""
}

// joinList is TasksHub.JoinList(int listId): Groups.AddToGroupAsync of
// "list-ID".
func (x *signalrConn) joinList(id int) string {
	if _, errText := x.list(id); errText != "" {
		return errText
	}
	group := "list-" + strconv.Itoa(id)
	if x.a.groups[group] == nil {
		x.a.groups[group] = map[*signalrConn]bool{}
	}
	x.a.groups[group][x] = true
	x.a.Counts.Add("lists joined", 1)
	return ""
}

// addTask is TasksHub.AddTask(int listId, string title): the task saved,
// TaskAdded sent to the list's group, the task returned.
func (x *signalrConn) addTask(listID int, title *string) (group, target, dto, errText string) {
	if _, errText = x.list(listID); errText != "" {
		return "", "", "", errText
	}
	if title == nil || strings.TrimSpace(*title) == "" {
		x.a.refuse("hub invalid", "a blank title")
		return "", "", "", "A task needs a title."
	}
	x.a.lastTask++
	t := &signalrTask{list: listID, title: *title}
	x.a.tasks[x.a.lastTask] = t
	x.a.Counts.Add("tasks added", 1)
	return "list-" + strconv.Itoa(listID), "TaskAdded", signalrTaskJSON(x.a.lastTask, t), ""
}

// completeTask is TasksHub.CompleteTask(int taskId): the task done,
// TaskCompleted {id, listId} sent to its list's group, true returned.
func (x *signalrConn) completeTask(id int) (group, target, payload, errText string) {
	t := x.a.tasks[id]
	switch {
	case t == nil:
		x.a.refuse("hub missing", "task %d", id)
		return "", "", "", "No such task"
	case x.a.lists[t.list] == nil || x.a.lists[t.list].owner != x.user.id:
		x.a.refuse("hub foreign", "task %d of another user's, for %s", id, x.user.email)
		return "", "", "", "No such task"
	}
	t.done = true
	x.a.Counts.Add("tasks completed", 1)
	return "list-" + strconv.Itoa(t.list), "TaskCompleted", fmt.Sprintf(`{"id":%d,"listId":%d}`, id, t.list), ""
}
