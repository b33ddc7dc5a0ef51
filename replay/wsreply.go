package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// A streamed reply (an LLM answer token by token) has as many frames as
// the server chooses, so a replayed reply cannot be known to be over by
// counting the recorded frames. Its last frame has a shape instead: a
// {"type":"done"} after the {"type":"token"} ones, a key that only the
// last frame has, or a fixed text such as "[DONE]". At load, each socket's
// recorded replies are searched for the simplest shape that every last
// frame has and no other frame has; at replay a reply ends at the first
// frame of that shape, however many came before it. A socket whose replies
// show no such shape falls back to the recorded count; either way a reply
// also ends after a silence.

// discriminators returns the JSON fields that usually say what a message
// is.
func discriminators() []string {
	return []string{"type", "event", "status", "done", "finish_reason", "object", "kind", "action", "op", "msg_type", "state", "execution_state"}
}

// endShape recognises the last frame of a reply.
type endShape struct {
	fields map[string]string // field → its compact JSON value, for a JSON object
	keys   string            // the sorted keys of a JSON object, joined by commas
	text   []byte            // the exact payload
}

// matches reports whether p, a server frame's payload, has the shape.
func (m *endShape) matches(p []byte) bool {
	switch {
	case m.text != nil:
		return bytes.Equal(bytes.TrimSpace(p), m.text)
	case m.fields != nil:
		obj, ok := object(p)
		if !ok {
			return false
		}
		for k, v := range m.fields {
			if compact(fieldAt(obj, k)) != v {
				return false
			}
		}
		return true
	case m.keys != "":
		obj, ok := object(p)
		return ok && keysOf(obj) == m.keys
	}
	return false
}

// String names the shape for reports.
func (m *endShape) String() string {
	switch {
	case m == nil:
		return "recorded frame count"
	case m.text != nil:
		return "text " + string(m.text)
	case m.fields != nil:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m.fields)) {
			parts = append(parts, k+"="+m.fields[k])
		}
		return "fields " + strings.Join(parts, ",")
	}
	return "keys " + m.keys
}

func object(p []byte) (map[string]json.RawMessage, bool) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || p[0] != '{' {
		return nil, false
	}
	var obj map[string]json.RawMessage
	return obj, json.Unmarshal(p, &obj) == nil
}

// fieldAt returns the value at a field's name in obj, or in an object it
// holds for a dotted name (content.execution_state).
func fieldAt(obj map[string]json.RawMessage, name string) json.RawMessage {
	outer, inner, nested := strings.Cut(name, ".")
	if !nested {
		return obj[name]
	}
	in, ok := object(obj[outer])
	if !ok {
		return nil
	}
	return in[inner]
}

// withNested returns names and, for each object among obj's fields, the
// dotted names of its fields that are among names (a kernel message's
// content.execution_state).
func withNested(obj map[string]json.RawMessage, names []string) []string {
	out := slices.Clone(names)
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		in, ok := object(obj[k])
		if !ok {
			continue
		}
		for _, n := range names {
			if _, ok := in[n]; ok {
				out = append(out, k+"."+n)
			}
		}
	}
	return out
}

func compact(v json.RawMessage) string {
	if v == nil {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

func keysOf(obj map[string]json.RawMessage) string {
	return strings.Join(slices.Sorted(maps.Keys(obj)), ",")
}

// scalar reports whether a JSON value is a string, number, boolean or null:
// something a final frame can be told by.
func scalar(v string) bool { return v != "" && v[0] != '{' && v[0] != '[' }

// findEndShape returns the shape that every payload of last has and none of
// others has, or nil. It tries, in order: the discriminating fields whose
// value is the same in every last frame; those with every other field of
// the set of keys; the fields of constant value that some other frame does
// not share; the exact text.
func findEndShape(last, others [][]byte) *endShape {
	if len(last) == 0 {
		return nil
	}
	separates := func(m *endShape) bool {
		for _, p := range last {
			if !m.matches(p) {
				return false
			}
		}
		for _, p := range others {
			if m.matches(p) {
				return false
			}
		}
		return true
	}
	objs := make([]map[string]json.RawMessage, 0, len(last))
	for _, p := range last {
		if o, ok := object(p); ok {
			objs = append(objs, o)
		}
	}
	if len(objs) == len(last) {
		// constant returns the fields of names whose value is the same
		// scalar in every last frame.
		constant := func(names []string) map[string]string {
			out := map[string]string{}
			for _, k := range names {
				v := compact(fieldAt(objs[0], k))
				if !scalar(v) {
					continue
				}
				same := true
				for _, o := range objs[1:] {
					if compact(fieldAt(o, k)) != v {
						same = false
						break
					}
				}
				if same {
					out[k] = v
				}
			}
			return out
		}
		known := constant(withNested(objs[0], discriminators()))
		if len(known) > 0 {
			if m := (&endShape{fields: known}); separates(m) {
				return m
			}
		}
		if m := (&endShape{keys: keysOf(objs[0])}); separates(m) {
			return m
		}
		if len(objs) > 1 {
			// Fields of constant value over several replies, kept only
			// where some other frame differs: a value every frame shares
			// (a conversation id) tells nothing and may change live.
			all := constant(slices.Collect(maps.Keys(objs[0])))
			for k, v := range all {
				differs := false
				for _, p := range others {
					if o, ok := object(p); !ok || compact(o[k]) != v {
						differs = true
						break
					}
				}
				if !differs {
					delete(all, k)
				}
			}
			if len(all) > 0 {
				if m := (&endShape{fields: all}); separates(m) {
					return m
				}
			}
		}
	}
	if m := (&endShape{text: bytes.TrimSpace(last[0])}); len(m.text) > 0 && separates(m) {
		return m
	}
	return nil
}

// Reply idle bounds: a reply that has begun and then stays silent this long
// is over. The default is ten times the longest gap between its recorded
// frames, within these bounds.
const (
	minReplyIdle = time.Second
	maxReplyIdle = 10 * time.Second
)

// wsScriptOf makes the client's side of a recorded WebSocket: its data
// messages, each with what its reply looked like.
func wsScriptOf(ws *traces.WebSocket) *wsScript {
	w := &wsScript{close: ws.Close.Offset}
	var groups [][]traces.Frame // the server's data frames after each client message
	for _, f := range ws.Frames {
		data := f.Opcode == traces.OpText || f.Opcode == traces.OpBinary
		switch {
		case !data:
		case f.FromClient:
			w.frames = append(w.frames, wsFrame{index: len(w.frames), offset: f.Offset, opcode: int(f.Opcode), payload: f.Payload.Data})
			groups = append(groups, nil)
		case heartbeat(f.Payload.Data):
			// The server's own pulse, whatever the client sent: no part
			// of a reply.
		case len(groups) > 0:
			groups[len(groups)-1] = append(groups[len(groups)-1], f)
		}
	}
	if c, sv, byID := replyIDs(ws); byID != nil {
		// Replies carry the id of the message they answer: each is the
		// frames that carry its message's id, however they interleave.
		w.idClient, w.idServer, groups = c, sv, byID
		for i := range groups {
			if i+1 < len(groups) && len(groups[i]) > 0 && groups[i][len(groups[i])-1].Offset > w.frames[i+1].offset {
				w.frames[i].overlaps = true
			}
		}
	}
	var last, others [][]byte
	for i, g := range groups {
		wf := &w.frames[i]
		wf.replies = len(g)
		gap := time.Duration(0)
		for j, f := range g {
			if j > 0 {
				gap = max(gap, f.Offset-g[j-1].Offset)
			}
			if j == len(g)-1 {
				last = append(last, f.Payload.Data)
			} else {
				others = append(others, f.Payload.Data)
			}
		}
		wf.idle = min(max(10*gap, minReplyIdle), maxReplyIdle)
	}
	for _, f := range ws.Frames {
		if !f.FromClient && (f.Opcode == traces.OpText || f.Opcode == traces.OpBinary) {
			for _, r := range refusalsOf(f.Payload.Data) {
				if !slices.Contains(w.said, r) {
					w.said = append(w.said, r)
				}
			}
		}
	}
	w.end = findEndShape(last, others)
	if w.end == nil && w.idClient == nil {
		w.end = cutEndShape(groups)
	}
	if w.end != nil && w.idClient == nil {
		for i, g := range groups {
			// A reply whose recorded frames stop short of the end shape
			// was still going when the next message was sent: the user
			// did not wait for it, and the replayed user does not either.
			if len(g) > 0 && i+1 < len(groups) && !w.end.matches(g[len(g)-1].Payload.Data) {
				w.frames[i].overlaps = true
			}
		}
	}
	return w
}

// cutEndShape finds the end shape of a socket where some user sent a
// message before the reply to the one before was over, so that the reply's
// last frame was recorded after the next message. It takes the shapes the
// socket's final frame has (nothing cut the final reply) and accepts the
// first of them that as many frames have as there are replies.
func cutEndShape(groups [][]traces.Frame) *endShape {
	n := len(groups) - 1
	for n >= 0 && len(groups[n]) == 0 {
		n--
	}
	if n < 1 {
		return nil
	}
	final := groups[n][len(groups[n])-1].Payload.Data
	var cands []*endShape
	if obj, ok := object(final); ok {
		known := map[string]string{}
		for _, k := range discriminators() {
			if v := compact(obj[k]); scalar(v) {
				known[k] = v
			}
		}
		if len(known) > 0 {
			cands = append(cands, &endShape{fields: known})
		}
		cands = append(cands, &endShape{keys: keysOf(obj)})
	}
	if t := bytes.TrimSpace(final); len(t) > 0 {
		cands = append(cands, &endShape{text: t})
	}
	replies, frames := 0, 0
	for _, g := range groups {
		if len(g) > 0 {
			replies++
		}
		frames += len(g)
	}
	for _, m := range cands {
		if ends, ok := endsInOrder(groups, m); ok && ends == replies && frames > ends {
			return m
		}
	}
	return nil
}

// endsInOrder counts the frames of shape m, and reports whether they fall
// as the ends of replies can: no frame comes after the end of the reply to
// the latest message sent, before the next message.
func endsInOrder(groups [][]traces.Frame, m *endShape) (int, bool) {
	ends := 0
	for i, g := range groups {
		for _, f := range g {
			if ends == i+1 {
				return ends, false // a frame after every reply so far was over
			}
			if m.matches(f.Payload.Data) {
				ends++
			}
		}
	}
	return ends, true
}

// Bounds on what replyIDs reads of a socket.
const (
	maxIDMessages = 200
	maxIDFrames   = 4000
	maxIDDepth    = 4
	// maxIDStrays: at most one frame in this many that hold the server's
	// id field may hold no id of a message sent before it.
	maxIDStrays = 5
)

// replyIDs finds where a socket's client messages carry an id that the
// server's frames answering them carry back: a kernel message's
// header.msg_id in its replies' parent_header.msg_id, a JSON-RPC id, a
// Phoenix ref. The id is a field whose value differs in every message
// that has it; the server's field holds, in nearly every frame that has it
// (see maxIDStrays), the id of a message sent before the frame, for at
// least two messages. It
// returns both paths and, per client message, the frames that answered
// it; nil when no such field is found.
func replyIDs(ws *traces.WebSocket) (client, server []any, groups [][]traces.Frame) {
	type leaf struct {
		path  []any
		value string
	}
	leavesOf := func(p []byte) map[string]leaf {
		doc, ok := decodeJSON(jsonPart(bytes.TrimSpace(p)))
		if !ok {
			return nil
		}
		out := map[string]leaf{}
		walk(doc, nil, func(path []any, v string) {
			if len(path) <= maxIDDepth {
				out[fmt.Sprint(path...)] = leaf{slices.Clone(path), v}
			}
		})
		return out
	}
	type message struct {
		at     time.Duration
		leaves map[string]leaf
	}
	var msgs []message
	var frames []traces.Frame
	for _, f := range ws.Frames {
		switch {
		case f.Opcode != traces.OpText && f.Opcode != traces.OpBinary:
		case f.FromClient:
			if len(msgs) < maxIDMessages {
				msgs = append(msgs, message{f.Offset, leavesOf(f.Payload.Data)})
			}
		case len(frames) < maxIDFrames:
			frames = append(frames, f)
		}
	}
	if len(msgs) < 2 {
		return nil, nil, nil
	}
	// Client fields whose values differ in every message: value → the
	// fields and messages that hold it.
	type holder struct {
		key string
		msg int
	}
	seen := map[string]map[string]bool{} // field → values
	distinct := map[string]bool{}
	for _, m := range msgs {
		for k, l := range m.leaves {
			if seen[k] == nil {
				seen[k], distinct[k] = map[string]bool{}, true
			}
			if seen[k][l.value] {
				distinct[k] = false
			}
			seen[k][l.value] = true
		}
	}
	// An id is in every message, named so (msg_id, id, ref) or at an
	// array's place (Phoenix's [join_ref, ref, ...]).
	memo := map[string]bool{}
	idLike := func(k string) bool {
		if v, ok := memo[k]; ok {
			return v
		}
		var path []any
		for _, m := range msgs {
			l, ok := m.leaves[k]
			if !ok {
				memo[k] = false
				return false
			}
			path = l.path
		}
		_, index := path[len(path)-1].(int)
		memo[k] = idNamed(path[len(path)-1]) || index
		return memo[k]
	}
	held := map[string][]holder{}
	for i, m := range msgs {
		for k, l := range m.leaves {
			if distinct[k] && len(seen[k]) >= 2 && idLike(k) {
				held[l.value] = append(held[l.value], holder{k, i})
			}
		}
	}
	type pair struct{ c, s string }
	hits, answered := map[pair]int{}, map[pair]map[int]bool{}
	present := map[string]int{}
	serverLeaves := make([]map[string]leaf, len(frames))
	serverPath := map[string][]any{}
	for n, f := range frames {
		serverLeaves[n] = leavesOf(f.Payload.Data)
		for k, l := range serverLeaves[n] {
			present[k]++
			serverPath[k] = l.path
			for _, h := range held[l.value] {
				if msgs[h.msg].at <= f.Offset {
					p := pair{h.key, k}
					hits[p]++
					if answered[p] == nil {
						answered[p] = map[int]bool{}
					}
					answered[p][h.msg] = true
				}
			}
		}
	}
	var best pair
	bestScore := -1
	for _, p := range slices.SortedFunc(maps.Keys(hits), func(a, b pair) int { return strings.Compare(a.c+" "+a.s, b.c+" "+b.s) }) {
		// A few frames may hold another value there: the server's own
		// messages (a kernel's status on connecting, with the id of a
		// request the server made itself).
		misses := present[p.s] - hits[p]
		if misses*maxIDStrays > hits[p] || len(answered[p]) < 2 {
			continue
		}
		score := hits[p] - misses
		if last := serverPath[p.s][len(serverPath[p.s])-1]; idNamed(last) {
			score += 1 << 20
		}
		if score > bestScore {
			best, bestScore = p, score
		}
	}
	if bestScore < 0 {
		return nil, nil, nil
	}
	var cpath []any
	for _, m := range msgs {
		if l, ok := m.leaves[best.c]; ok {
			cpath = l.path
			break
		}
	}
	groups = make([][]traces.Frame, 0, len(msgs))
	ids := map[string]int{}
	for i, m := range msgs {
		groups = append(groups, nil)
		if l, ok := m.leaves[best.c]; ok {
			ids[l.value] = i
		}
	}
	for n, f := range frames {
		if l, ok := serverLeaves[n][best.s]; ok {
			if i, ok := ids[l.value]; ok {
				groups[i] = append(groups[i], f)
			}
		}
	}
	// Messages past the bound keep their place.
	for len(groups) < countClient(ws) {
		groups = append(groups, nil)
	}
	return cpath, serverPath[best.s], groups
}

// countClient counts a socket's client data messages.
func countClient(ws *traces.WebSocket) int {
	n := 0
	for _, f := range ws.Frames {
		if f.FromClient && (f.Opcode == traces.OpText || f.Opcode == traces.OpBinary) {
			n++
		}
	}
	return n
}

// idNamed reports a path step whose name says id or ref.
func idNamed(step any) bool {
	k, ok := step.(string)
	k = strings.ToLower(k)
	return ok && (strings.Contains(k, "id") || strings.Contains(k, "ref"))
}

// heartbeat reports a server frame that is the connection's pulse rather
// than a reply: an Engine.IO ping, or a short JSON message whose type says
// ping, pong, heartbeat or keepalive (ActionCable's {"type":"ping"}).
func heartbeat(p []byte) bool {
	p = bytes.TrimSpace(p)
	if len(p) == 1 && (p[0] == '2' || p[0] == '3') {
		return true
	}
	if len(p) == 0 || p[0] != '{' || len(p) > 256 || !json.Valid(p) {
		return false
	}
	found := false
	s := jsonScan{b: p}
	for _, k := range []string{"type", "event", "op", "msg_type", "action", "command"} {
		s.i = 0
		if !s.member(k) {
			continue
		}
		s.space()
		if s.i < len(p) && p[s.i] == '"' {
			from := s.i
			s.skipString()
			if keyOneOf(p[from+1:max(s.i-1, from+1)], "ping", "pong", "heartbeat", "keepalive", "keep_alive", "keep-alive", "hb") {
				found = true
			}
		}
		break
	}
	return found
}
