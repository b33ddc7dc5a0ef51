package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// Corpus generates sessions. The same seed gives the same sessions.
// A Corpus is not safe for concurrent use.
type Corpus struct {
	rng   *rand.Rand
	words []string
	zipf  *rand.Zipf
	start time.Time
	next  int

	// The backend's catalogue: projects exist once and are served many
	// times, popular ones most, as in a real app, so the same bodies recur
	// across sessions (which is what a trace compressor can exploit, and
	// what real traffic offers it).
	catalogue []string
	popular   *rand.Zipf
	details   map[int][]byte
	tools     []byte
}

const catalogueSize = 5000

// New returns a corpus seeded with seed.
func New(seed uint64) *Corpus {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	c := &Corpus{rng: rng, start: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	// A vocabulary of made-up words whose use follows Zipf's law, as words in
	// real text do: some very common, a long tail of rare ones.
	syll := []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "xe", "ya", "zu", "bri", "cho", "dra", "fle", "gri", "pla", "sto", "tre", "qua"}
	seen := map[string]bool{}
	for len(c.words) < 3000 {
		n := 1 + rng.IntN(4)
		var b strings.Builder
		for range n {
			b.WriteString(syll[rng.IntN(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			c.words = append(c.words, w)
		}
	}
	c.zipf = rand.NewZipf(rng, 1.1, 2, uint64(len(c.words)-1))
	c.popular = rand.NewZipf(rng, 1.05, 5, catalogueSize-1)
	c.details = map[int][]byte{}
	for i := range catalogueSize {
		var b strings.Builder
		c.project(&b, 10000+i)
		c.catalogue = append(c.catalogue, b.String())
	}
	c.tools = c.listing(perPage(c.bodySize()), 1)
	return c
}

func (c *Corpus) word() string { return c.words[c.zipf.Uint64()] }

func (c *Corpus) sentence(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.word())
	}
	return b.String()
}

func (c *Corpus) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[c.rng.IntN(16)]
	}
	return string(b)
}

// page draws a listing page: most visitors stay on the first few.
func (c *Corpus) page() int { return 1 + int(c.zipf.Uint64()%30) }

// bodySize draws a JSON body size between 200 B and 20 KB, log-uniformly, so
// small API answers are common and large listings rare.
func (c *Corpus) bodySize() int {
	lo, hi := 200.0, 20000.0
	return int(lo * math.Pow(hi/lo, c.rng.Float64()))
}

// project renders one catalogue entry as JSON.
func (c *Corpus) project(b *strings.Builder, id int) {
	fmt.Fprintf(b, `{"id":%d,"slug":"%s-%s-%d","title":%q,"description":%q,"owner":{"id":%d,"username":"%s%d","avatar_url":"https://cdn.allthrive.example/avatars/%s.png"},"tags":[%q,%q,%q],"tools":[%d,%d],"stars":%d,"is_public":%t,"created_at":"2026-%02d-%02dT%02d:%02d:%02d.%06dZ","updated_at":"2026-%02d-%02dT%02d:%02d:%02dZ","url":"/projects/%d/"}`,
		id, c.word(), c.word(), id, c.sentence(3+c.rng.IntN(4)), c.sentence(10+c.rng.IntN(30)),
		1000+c.rng.IntN(90000), c.word(), c.rng.IntN(1000), c.hex(16),
		c.word(), c.word(), c.word(), c.rng.IntN(300), c.rng.IntN(300), c.rng.IntN(5000), c.rng.IntN(4) > 0,
		1+c.rng.IntN(11), 1+c.rng.IntN(28), c.rng.IntN(24), c.rng.IntN(60), c.rng.IntN(60), c.rng.IntN(1000000),
		1+c.rng.IntN(11), 1+c.rng.IntN(28), c.rng.IntN(24), c.rng.IntN(60), c.rng.IntN(60), id)
}

// perPage is how many catalogue entries make a listing of about size bytes.
func perPage(size int) int { return max(1, size/560) }

// listing renders page of the catalogue with n projects per page.
func (c *Corpus) listing(n, page int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"count":%d,"next":"/api/projects/?page=%d&page_size=%d","previous":null,"results":[`, catalogueSize, page+1, n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.catalogue[((page-1)*n+i)%catalogueSize])
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// search renders n projects matching a query: popular ones, in no order.
func (c *Corpus) search(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"count":%d,"results":[`, n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.catalogue[c.popular.Uint64()])
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// popularDetail returns the detail body of a catalogue project, the same each
// time it is asked for.
func (c *Corpus) popularDetail() (int, []byte) {
	id := 10000 + int(c.popular.Uint64())
	d, ok := c.details[id]
	if !ok {
		d = c.detail(id, c.bodySize())
		c.details[id] = d
	}
	return id, d
}

// detail renders one project with what a detail view embeds (related
// projects, recent activity) until it is about size bytes.
func (c *Corpus) detail(id, size int) []byte {
	var b strings.Builder
	c.project(&b, id)
	s := strings.TrimSuffix(b.String(), "}")
	b.Reset()
	b.WriteString(s)
	b.WriteString(`,"activity":[`)
	for i := 0; b.Len() < size/3; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"kind":%q,"actor":{"id":%d,"username":"%s%d"},"at":"2026-%02d-%02dT%02d:%02d:%02dZ","summary":%q}`,
			c.rng.IntN(1000000), []string{"star", "fork", "comment", "update", "import"}[c.rng.IntN(5)],
			1000+c.rng.IntN(90000), c.word(), c.rng.IntN(1000),
			1+c.rng.IntN(11), 1+c.rng.IntN(28), c.rng.IntN(24), c.rng.IntN(60), c.rng.IntN(60), c.sentence(3+c.rng.IntN(8)))
	}
	b.WriteString(`],"related":[`)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.catalogue[c.popular.Uint64()])
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

type visitor struct {
	sessionid, csrf, ua string
}

func (c *Corpus) reqHeaders(v *visitor, path string, body int) []traces.Header {
	hs := []traces.Header{
		{Name: "Host", Value: "app.allthrive.example"},
		{Name: "User-Agent", Value: v.ua},
		{Name: "Accept", Value: "application/json, text/plain, */*"},
		{Name: "Accept-Language", Value: "en-US,en;q=0.9"},
		{Name: "Accept-Encoding", Value: "gzip, deflate, br"},
		{Name: "Referer", Value: "https://app.allthrive.example" + path},
		{Name: "Cookie", Value: "csrftoken=" + v.csrf + "; sessionid=" + v.sessionid},
		{Name: "Connection", Value: "keep-alive"},
	}
	if body > 0 {
		hs = append(hs,
			traces.Header{Name: "Content-Type", Value: "application/json"},
			traces.Header{Name: "Content-Length", Value: strconv.Itoa(body)},
			traces.Header{Name: "X-CSRFToken", Value: v.csrf},
			traces.Header{Name: "Origin", Value: "https://app.allthrive.example"})
	}
	return hs
}

func (c *Corpus) respHeaders(at time.Time, body int, status int) []traces.Header {
	hs := []traces.Header{
		{Name: "Date", Value: at.Format(time.RFC1123)},
		{Name: "Server", Value: "gunicorn"},
		{Name: "Content-Type", Value: "application/json"},
		{Name: "Content-Length", Value: strconv.Itoa(body)},
		{Name: "Vary", Value: "Accept, Cookie, Origin"},
		{Name: "Allow", Value: "GET, POST, HEAD, OPTIONS"},
		{Name: "X-Frame-Options", Value: "DENY"},
		{Name: "X-Content-Type-Options", Value: "nosniff"},
		{Name: "Referrer-Policy", Value: "same-origin"},
		{Name: "Cross-Origin-Opener-Policy", Value: "same-origin"},
	}
	if status >= 400 {
		hs = append(hs, traces.Header{Name: "Cache-Control", Value: "no-store"})
	}
	return hs
}

// Session returns the next session; profiles come in the team's 60/30/10
// browse/chat/import mix.
func (c *Corpus) Session() *traces.Session {
	c.next++
	v := &visitor{sessionid: c.hex(32), csrf: c.hex(32), ua: userAgent}
	s := &traces.Session{
		ID:     fmt.Sprintf("s%06d", c.next),
		Client: "sessionid=" + v.sessionid[:8],
		Start:  c.start.Add(time.Duration(c.next) * 1700 * time.Millisecond),
	}
	var at time.Duration
	add := func(method, path string, reqBody, respBody []byte, status int, think time.Duration) *traces.Exchange {
		at += think
		ttfb := time.Duration(5+c.rng.IntN(200)) * time.Millisecond
		ex := traces.Exchange{
			Offset: at, Think: think, TTFB: ttfb, Duration: ttfb + time.Duration(c.rng.IntN(5000))*time.Microsecond,
			Method: method, URL: path, Host: "app.allthrive.example",
			ReqHeader: c.reqHeaders(v, path, len(reqBody)), ReqBody: traces.Body{Data: reqBody},
			Status: status, RespHeader: c.respHeaders(s.Start.Add(at), len(respBody), status), RespBody: traces.Body{Data: respBody},
		}
		at += ex.Duration
		s.Exchanges = append(s.Exchanges, ex)
		return &s.Exchanges[len(s.Exchanges)-1]
	}
	think := func(lo, hi int) time.Duration { return time.Duration(lo+c.rng.IntN(hi-lo)) * time.Millisecond }

	login := fmt.Sprintf(`{"username":"%s%d","password":"%s"}`, c.word(), c.rng.IntN(1000), c.hex(12))
	add("POST", "/api/auth/login/", []byte(login), []byte(fmt.Sprintf(`{"id":%d,"username":"%s"}`, c.rng.IntN(100000), c.word())), 200, 0)

	switch r := c.rng.IntN(10); {
	case r < 6:
		s.Profile = "browse"
		for range 4 + c.rng.IntN(12) {
			switch k := c.rng.IntN(100); {
			case k < 45:
				page, n := c.page(), perPage(c.bodySize())
				add("GET", fmt.Sprintf("/api/projects/?page=%d&page_size=%d", page, n), nil, c.listing(n, page), 200, think(1000, 5000))
			case k < 75:
				id, body := c.popularDetail()
				add("GET", fmt.Sprintf("/api/projects/%d/", id), nil, body, 200, think(1000, 5000))
			case k < 90:
				add("GET", "/api/tools/", nil, c.tools, 200, think(1000, 5000))
			default:
				add("GET", "/api/search/?q="+c.word(), nil, c.search(perPage(c.bodySize())), 200, think(1000, 5000))
			}
		}
	case r < 9:
		s.Profile = "chat"
		up := add("GET", "/ws/chat/", nil, nil, 101, think(500, 2000))
		up.ReqHeader = append(up.ReqHeader,
			traces.Header{Name: "Upgrade", Value: "websocket"},
			traces.Header{Name: "Sec-WebSocket-Version", Value: "13"},
			traces.Header{Name: "Sec-WebSocket-Key", Value: c.hex(22) + "=="})
		up.RespHeader = []traces.Header{{Name: "Upgrade", Value: "websocket"}, {Name: "Connection", Value: "Upgrade"}, {Name: "Sec-WebSocket-Accept", Value: c.hex(27) + "="}}
		ws := &traces.WebSocket{}
		t := up.Offset + up.Duration
		for range 3 + c.rng.IntN(8) {
			t += think(500, 2000)
			msg := fmt.Sprintf(`{"type":"message","message":%q}`, c.sentence(4+c.rng.IntN(20)))
			ws.Frames = append(ws.Frames, traces.Frame{Offset: t, FromClient: true, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(msg)}})
			for range 5 + c.rng.IntN(30) {
				t += time.Duration(10+c.rng.IntN(60)) * time.Millisecond
				tok := fmt.Sprintf(`{"type":"token","content":%q}`, " "+c.word())
				ws.Frames = append(ws.Frames, traces.Frame{Offset: t, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(tok)}})
			}
			t += 20 * time.Millisecond
			ws.Frames = append(ws.Frames, traces.Frame{Offset: t, Opcode: traces.OpText, Payload: traces.Body{Data: []byte(`{"type":"done"}`)}})
		}
		ws.Close = traces.Close{Offset: t + think(500, 2000), Code: 1000, ByClient: true}
		up.WebSocket = ws
		at = ws.Close.Offset
		for range c.rng.IntN(3) {
			page, n := c.page(), perPage(c.bodySize())
			add("GET", fmt.Sprintf("/api/projects/?page=%d&page_size=%d", page, n), nil, c.listing(n, page), 200, think(500, 2000))
		}
	default:
		s.Profile = "import"
		for range 1 + c.rng.IntN(3) {
			kind, src := "github", "https://github.com/"+c.word()+"/"+c.word()
			if c.rng.IntN(10) < 4 {
				kind, src = "youtube", "https://www.youtube.com/watch?v="+c.hex(11)
			}
			job, proj := 100000+c.rng.IntN(900000), 10000+catalogueSize+c.rng.IntN(90000)
			add("POST", "/api/import/"+kind+"/", []byte(fmt.Sprintf(`{"url":%q}`, src)),
				[]byte(fmt.Sprintf(`{"job_id":%d,"project_id":%d,"status":"pending"}`, job, proj)), 202, think(3000, 10000))
			for range 1 + c.rng.IntN(4) {
				add("GET", fmt.Sprintf("/api/import/jobs/%d/", job), nil, []byte(fmt.Sprintf(`{"job_id":%d,"status":"pending","progress":%d}`, job, c.rng.IntN(100))), 200, think(1000, 3000))
			}
			add("GET", fmt.Sprintf("/api/projects/%d/", proj), nil, c.detail(proj, c.bodySize()), 200, think(3000, 10000))
		}
	}
	return s
}

// Sessions returns the next n sessions.
func (c *Corpus) Sessions(n int) []*traces.Session {
	ss := make([]*traces.Session, n)
	for i := range ss {
		ss[i] = c.Session()
	}
	return ss
}
