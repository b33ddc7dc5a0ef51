package traces

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// The JSON form of a session is for people and for tools such as jq: times in
// milliseconds, headers as [name, value] pairs in order, and bodies as text
// when they are UTF-8, base64 otherwise. A compressed body is also given
// decoded, as text in "decoded", with its Content-Encoding in "encoding", so
// that jq sees inside a gzip answer. It round-trips: UnmarshalJSON reads what
// MarshalJSON writes (the decoded text is derived and not read back).

type jsonSession struct {
	ID        string         `json:"id"`
	Profile   string         `json:"profile"`
	Client    string         `json:"client,omitempty"`
	Start     time.Time      `json:"start,omitzero"`
	Evidence  string         `json:"evidence,omitempty"`
	Continues bool           `json:"continues,omitempty"`
	Strays    bool           `json:"strays,omitempty"`
	Exchanges []jsonExchange `json:"exchanges"`
}

type jsonExchange struct {
	Offset    float64        `json:"offset_ms"`
	Think     float64        `json:"think_ms"`
	TTFB      float64        `json:"ttfb_ms"`
	Duration  float64        `json:"duration_ms"`
	Method    string         `json:"method"`
	URL       string         `json:"url"`
	Host      string         `json:"host,omitempty"`
	Request   jsonMessage    `json:"request"`
	Status    int            `json:"status"`
	Response  jsonMessage    `json:"response"`
	Error     string         `json:"error,omitempty"`
	WebSocket *jsonWebSocket `json:"websocket,omitempty"`
	Placed    *Placement     `json:"placed,omitempty"` // absent: by the session's key
}

type jsonMessage struct {
	Headers [][2]string `json:"headers"`
	jsonBody
	Encoding string  `json:"encoding,omitempty"`
	Decoded  *string `json:"decoded,omitempty"`
}

// message makes the JSON form of a request's or answer's headers and body.
func message(hs []Header, b *Body) jsonMessage {
	m := jsonMessage{Headers: toPairs(hs), jsonBody: toJSONBody(b)}
	if codings := ContentEncoding(hs); len(codings) > 0 && len(b.Data) > 0 {
		m.Encoding = strings.Join(codings, ", ")
		if plain, ok := Content(hs, b); ok && utf8.Valid(plain) {
			s := string(plain)
			m.Decoded = &s
		}
	}
	return m
}

type jsonBody struct {
	Body       *string `json:"body,omitempty"`
	BodyBase64 *string `json:"body_base64,omitempty"`
	Size       int64   `json:"size,omitempty"`
	SHA256     string  `json:"sha256,omitempty"`
}

type jsonWebSocket struct {
	Frames []jsonFrame `json:"frames"`
	Close  jsonClose   `json:"close"`
}

type jsonFrame struct {
	Offset float64 `json:"offset_ms"`
	From   string  `json:"from"`
	Opcode Opcode  `json:"opcode"`
	jsonBody
}

type jsonClose struct {
	Offset float64 `json:"offset_ms"`
	Code   int     `json:"code,omitempty"`
	Reason string  `json:"reason,omitempty"`
	By     string  `json:"by,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fromMS(v float64) time.Duration { return time.Duration(math.Round(v * float64(time.Millisecond))) }

func toJSONBody(b *Body) jsonBody {
	var j jsonBody
	if len(b.Data) > 0 {
		if utf8.Valid(b.Data) {
			s := string(b.Data)
			j.Body = &s
		} else {
			s := base64.StdEncoding.EncodeToString(b.Data)
			j.BodyBase64 = &s
		}
	}
	if b.Size != 0 {
		j.Size = b.Size
	}
	if b.Size > int64(len(b.Data)) {
		j.SHA256 = hex.EncodeToString(b.SHA256[:])
	}
	return j
}

func (j *jsonBody) body() (Body, error) {
	var b Body
	switch {
	case j.Body != nil && j.BodyBase64 != nil:
		return b, fmt.Errorf("both body and body_base64 are set")
	case j.Body != nil:
		b.Data = []byte(*j.Body)
	case j.BodyBase64 != nil:
		data, err := base64.StdEncoding.DecodeString(*j.BodyBase64)
		if err != nil {
			return b, fmt.Errorf("body_base64: %w", err)
		}
		b.Data = data
	}
	b.Size = j.Size
	if j.SHA256 != "" {
		h, err := hex.DecodeString(j.SHA256)
		if err != nil || len(h) != len(b.SHA256) {
			return b, fmt.Errorf("sha256 %q is not %d hex bytes", j.SHA256, len(b.SHA256))
		}
		copy(b.SHA256[:], h)
	}
	return b, nil
}

func toPairs(hs []Header) [][2]string {
	ps := make([][2]string, len(hs))
	for i, h := range hs {
		ps[i] = [2]string{h.Name, h.Value}
	}
	return ps
}

func fromPairs(ps [][2]string) []Header {
	if len(ps) == 0 {
		return nil
	}
	hs := make([]Header, len(ps))
	for i, p := range ps {
		hs[i] = Header{Name: p[0], Value: p[1]}
	}
	return hs
}

func side(client bool) string {
	if client {
		return "client"
	}
	return "server"
}

// MarshalJSON encodes s in the readable form `thrive traces cat` prints.
func (s *Session) MarshalJSON() ([]byte, error) {
	js := jsonSession{ID: s.ID, Profile: s.Profile, Client: s.Client, Start: s.Start, Evidence: s.Evidence,
		Continues: s.Continues, Strays: s.Strays, Exchanges: make([]jsonExchange, len(s.Exchanges))}
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		je := &js.Exchanges[i]
		*je = jsonExchange{
			Offset: ms(ex.Offset), Think: ms(ex.Think), TTFB: ms(ex.TTFB), Duration: ms(ex.Duration),
			Method: ex.Method, URL: ex.URL, Host: ex.Host,
			Request:  message(ex.ReqHeader, &ex.ReqBody),
			Status:   ex.Status,
			Response: message(ex.RespHeader, &ex.RespBody),
			Error:    ex.Error,
		}
		if ex.Placed != PlacedKey {
			je.Placed = &ex.Placed
		}
		if ws := ex.WebSocket; ws != nil {
			jw := &jsonWebSocket{Frames: make([]jsonFrame, len(ws.Frames))}
			for k := range ws.Frames {
				f := &ws.Frames[k]
				jw.Frames[k] = jsonFrame{Offset: ms(f.Offset), From: side(f.FromClient), Opcode: f.Opcode, jsonBody: toJSONBody(&f.Payload)}
			}
			jw.Close = jsonClose{Offset: ms(ws.Close.Offset), Code: ws.Close.Code, Reason: ws.Close.Reason}
			if ws.Close.Offset != 0 || ws.Close.Code != 0 || ws.Close.ByClient {
				jw.Close.By = side(ws.Close.ByClient)
			}
			je.WebSocket = jw
		}
	}
	return json.Marshal(&js)
}

// UnmarshalJSON decodes the form MarshalJSON writes.
func (s *Session) UnmarshalJSON(b []byte) error {
	var js jsonSession
	if err := json.Unmarshal(b, &js); err != nil {
		return err
	}
	*s = Session{ID: js.ID, Profile: js.Profile, Client: js.Client, Start: js.Start, Evidence: js.Evidence, Continues: js.Continues, Strays: js.Strays}
	if len(js.Exchanges) > 0 {
		s.Exchanges = make([]Exchange, len(js.Exchanges))
	}
	for i := range js.Exchanges {
		je := &js.Exchanges[i]
		ex := &s.Exchanges[i]
		*ex = Exchange{
			Offset: fromMS(je.Offset), Think: fromMS(je.Think), TTFB: fromMS(je.TTFB), Duration: fromMS(je.Duration),
			Method: je.Method, URL: je.URL, Host: je.Host,
			ReqHeader: fromPairs(je.Request.Headers), Status: je.Status,
			RespHeader: fromPairs(je.Response.Headers), Error: je.Error,
		}
		if je.Placed != nil {
			ex.Placed = *je.Placed
		}
		var err error
		if ex.ReqBody, err = je.Request.body(); err != nil {
			return fmt.Errorf("session %q exchange %d request: %w", js.ID, i, err)
		}
		if ex.RespBody, err = je.Response.body(); err != nil {
			return fmt.Errorf("session %q exchange %d response: %w", js.ID, i, err)
		}
		jw := je.WebSocket
		if jw == nil {
			continue
		}
		ws := &WebSocket{Close: Close{Offset: fromMS(jw.Close.Offset), Code: jw.Close.Code, Reason: jw.Close.Reason, ByClient: jw.Close.By == "client"}}
		if len(jw.Frames) > 0 {
			ws.Frames = make([]Frame, len(jw.Frames))
		}
		for k := range jw.Frames {
			jf := &jw.Frames[k]
			p, err := jf.body()
			if err != nil {
				return fmt.Errorf("session %q exchange %d frame %d: %w", js.ID, i, k, err)
			}
			ws.Frames[k] = Frame{Offset: fromMS(jf.Offset), FromClient: jf.From == "client", Opcode: jf.Opcode, Payload: p}
		}
		ex.WebSocket = ws
	}
	return nil
}

// WriteJSONLines writes each session of t as one JSON object per line (as
// thrive traces cat does). A damaged file is written as far as it reads,
// and its error returned.
func (t *File) WriteJSONLines(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for s, err := range t.Sessions() {
		if err != nil {
			return err
		}
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	return nil
}

// EscapeJSONString returns v as it stands inside a JSON string, without
// its quotes and with <, > and & left as they are: how a redacted or live
// value is found, or written, inside a JSON body.
func EscapeJSONString(v string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	s := strings.TrimSpace(b.String())
	return s[1 : len(s)-1]
}
