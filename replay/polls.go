package replay

import (
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// A page that starts a job polls it until it is done: the same request,
// again and again, whose answer says "running" until it says "done", then
// the result is fetched. Replayed with the recorded number of polls, a
// user whose live job is slower fetches a result that is not there; one
// whose job is faster polls for nothing. So a poll loop is replayed as a
// loop: its first request is sent, and sent again at the recorded
// interval until the live answer has the recorded final answer's shape
// (bounded: ten times the recorded polls, and ten times the recorded
// loop's span past the request timeout); the values later requests take
// from the final answer are taken from the live final one.

// pollLoop is a recorded poll loop, kept on its first request.
type pollLoop struct {
	final    *endShape     // what the answer that ended the loop looked like
	interval time.Duration // between the end of a poll and the next
	polls    int           // as recorded
	span     time.Duration // from the first poll's start to the last's end
	members  []int         // the steps of the later polls
}

// maxPolls bounds a replayed loop's polls, as a multiple of the recorded.
const maxPolls = 10

// pollLoops finds the poll loops of a session: runs of two or more
// requests with the same method, URL and body, each begun after the one
// before ended, with no request that changed something between them,
// whose last answer has a field saying what it is (findEndShape: state,
// status...) with a value that none of the others has. Long polls are not
// poll loops. It returns them by their
// first request, and the first request of each later member.
func pollLoops(s *traces.Session, long map[string]bool) (loops map[int]*pollLoop, memberOf map[int]int) {
	type key struct{ method, url, body string }
	runs := map[key][]int{}
	var order []key
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		if ex.WebSocket != nil || long[traces.Endpoint(ex)] || ex.RespBody.Truncated() || ex.Status < 200 || ex.Status >= 300 {
			continue
		}
		k := key{ex.Method, ex.URL, string(ex.ReqBody.Data)}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
		}
		runs[k] = append(runs[k], i)
	}
	for _, k := range order {
		run := runs[k]
		if len(run) < 2 {
			continue
		}
		sequential := true
		var gaps time.Duration
		for n := 1; n < len(run); n++ {
			prev, ex := &s.Exchanges[run[n-1]], &s.Exchanges[run[n]]
			gap := ex.Offset - (prev.Offset + prev.Duration)
			if gap < 0 {
				sequential = false
				break
			}
			gaps += gap
		}
		if !sequential {
			continue
		}
		// Nothing else changed anything meanwhile: what changed the
		// answer was the job itself (a list seen again after an edit is
		// no poll).
		for i := run[0] + 1; i < run[len(run)-1] && sequential; i++ {
			if ex := &s.Exchanges[i]; !safeMethod(ex.Method) && (ex.Method != k.method || ex.URL != k.url) {
				sequential = false
			}
		}
		if !sequential {
			continue
		}
		body := func(i int) []byte {
			b, _ := s.Exchanges[i].ResponseContent()
			return jsonPart(b)
		}
		last := run[len(run)-1]
		var others [][]byte
		for _, i := range run[:len(run)-1] {
			others = append(others, body(i))
		}
		final := findEndShape([][]byte{body(last)}, others)
		if final == nil || final.fields == nil {
			continue // no field that says the job is done: repeats, not a loop
		}
		first, end := &s.Exchanges[run[0]], &s.Exchanges[last]
		lp := &pollLoop{final: final, interval: gaps / time.Duration(len(run)-1), polls: len(run),
			span: end.Offset + end.Duration - first.Offset, members: run[1:]}
		if loops == nil {
			loops, memberOf = map[int]*pollLoop{}, map[int]int{}
		}
		loops[run[0]] = lp
		for _, m := range run[1:] {
			memberOf[m] = run[0]
		}
	}
	return loops, memberOf
}

// pollState is what a replayed poll loop's request tells the loop.
type pollState struct {
	loop   *pollLoop
	last   bool // the loop's bound is reached: a poll that is not final fails
	final  bool // the answer had the final shape
	failed bool // the poll failed, or was not sent
}

// errPollUnfinished: a loop that reached its bound before the live job was
// done.
const errPollUnfinished = "poll: never done"
