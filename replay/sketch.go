package replay

import (
	"bytes"

	"github.com/thrive-loadtest/thrive/report"
	"github.com/valyala/fasthttp"
)

// sketches reports whether the engine sketches what the target answers
// (report.AnswerStats): unless WithoutSketch.
func (e *Engine) sketches() bool { return !e.cfg.noSketch }

// sketchesBody reports whether an answer of endpoint, of status with
// Content-Type ct, is read whole for its sketch: a 2xx answer in JSON, one
// of a sample. Reading a JSON document's paths costs a few ns a byte, as
// much as the rest of an exchange for an answer of a few KB: the sketch
// reads the first sampleAll of each endpoint's, then one in sampleOne.
// Its fields' shares are of the answers read (AnswerStats.JSON).
func (e *Engine) sketchesBody(endpoint string, status int, ct []byte) bool {
	if !e.sketches() || status < 200 || status >= 300 || !isJSON(ct) {
		return false
	}
	c := e.readJSON[endpoint]
	if c == nil {
		return true
	}
	n := c.Add(1)
	return n <= sampleAll || n%sampleOne == 0
}

// The sample of JSON answers the sketch reads.
const (
	sampleAll = 64
	sampleOne = 32
)

// isJSON reports whether the media type ct is JSON: application/json,
// or any +json type (application/problem+json, application/ld+json).
func isJSON(ct []byte) bool {
	media, _, _ := bytes.Cut(ct, []byte(";"))
	media = bytes.TrimSpace(media)
	return bytes.EqualFold(media, []byte("application/json")) || bytes.EqualFold(media, []byte("text/json")) ||
		len(media) > 5 && bytes.EqualFold(media[len(media)-5:], []byte("+json"))
}

// sketch gives smp, the sample of a 2xx answer with header h, what the
// answer looked like: its size as it came, the headers that matter to
// clients, and the key paths of its body (decoded) when that was read as
// JSON. The Answer is lent from the engine's pool until the sample is
// reported (observe).
func (e *Engine) sketch(smp *report.Sample, h *fasthttp.ResponseHeader, size int64, body []byte) {
	if !e.sketches() || smp.Answer != nil || h.StatusCode() < 200 || h.StatusCode() >= 300 {
		return
	}
	a, _ := e.answers.Get().(*report.Answer)
	a.Reset()
	a.Size = size
	ct := h.ContentType()
	if media, _, _ := bytes.Cut(ct, []byte(";")); len(media) > 0 {
		a.Header("content-type", bytes.TrimSpace(media))
	}
	if len(h.Peek("Cache-Control")) > 0 {
		a.Header("cache-control", nil)
	}
	if len(h.Peek("Location")) > 0 {
		a.Header("location", nil)
	}
	for _, v := range h.Cookies() {
		name, _, _ := bytes.Cut(v, []byte("="))
		a.Header("set-cookie", bytes.TrimSpace(name))
	}
	if body != nil && isJSON(ct) {
		a.ReadJSON(body)
	}
	smp.Answer = a
}

// unsketch takes back the Answer lent to smp, if any.
func (e *Engine) unsketch(smp *report.Sample) {
	if smp.Answer != nil {
		e.answers.Put(smp.Answer)
		smp.Answer = nil
	}
}
