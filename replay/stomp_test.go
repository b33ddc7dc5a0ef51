package replay_test

import (
	"os"
	"sync"
	"testing"

	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/replay"
)

// TestSpringStompBoardsReplayed: three visits of a Spring Board app (a
// board made by a form, its id in the redirect; a STOMP socket that
// SUBSCRIBEs to /topic/boards.ID, SENDs cards to /app/boards/ID/cards and
// moves the first by the id its broadcast MESSAGE gave, in the
// destination header /app/boards/ID/cards/CARD/move), recorded through
// the capture and replayed as 6 users, each an account of its own. The
// board's id goes from the redirect into the frames' destinations, a dotted
// topic's included, and the card's from the MESSAGE's JSON body into a
// later frame's header: the app counts every card moved on its own board
// and no refusal (a subscription or send to another user's board is an
// ERROR frame and "stomp foreign" or "stomp missing").
func TestSpringStompBoardsReplayed(t *testing.T) {
	app := apptest.NewSpringBoard(t)
	visits, trace := apptest.Record(t, app.URL, func(base string) {
		var wg sync.WaitGroup
		for _, u := range []string{"user0", "user1", "user2"} {
			wg.Go(func() { apptest.SpringBoardClient(t, base, u) })
		}
		wg.Wait()
	})
	checkVisitsOf(t, visits, 3, map[string]int{"POST /login": 1, "POST /logout": 1, "POST /boards": 1})
	if t.Failed() {
		return
	}
	// The same visits against the app, and against a new build of it
	// whose broadcasts say board_id (Jackson's SNAKE_CASE): the board's id
	// came in the redirect before the socket, so no message waits for
	// the boardId that no longer comes.
	snake := apptest.NewSpringBoardBuild(t, apptest.SpringChange{SnakeCase: true})
	for _, target := range []*apptest.SpringBoard{app, snake} {
		target.Counts.Reset()
		const users = 6
		sink := replayVisits(t, target.URL, visits, users, "username", "u{{user.index}}")
		loggedIn(t, target.Users(), users)
		c := &target.Counts
		// Each user plays visits one after another for 4 s, a visit
		// taking 50 ms: the last may be cut by the run's end, and a
		// message left waiting for a value holds its user there.
		boards, moved := c.Get("boards created"), c.Get("cards moved")
		if boards < 2*users || moved < boards-users || c.Get("boards deleted") < boards-users {
			t.Errorf("%d boards made, %d cards moved: %s", boards, moved, c.String())
		}
		if (c.Get("build: snake case") > 0) != (target == snake) {
			t.Errorf("the build's change: %s", c.String())
		}
		for _, r := range springRefusals {
			if r != "login redirects" && c.Get(r) > 0 { // one a visit, as recorded
				t.Errorf("the app refused: %s", c.String())
				break
			}
		}
		failures(t, sink)
	}
	if t.Failed() {
		for _, r := range replay.FromSessions(visits).Rules() {
			t.Logf("correlation: %d sessions, %s, %s, sent back by %v", r.Count, r.Source, r.Why, r.Targets)
		}
		logVisits(t, visits)
		if b, err := os.ReadFile(trace); err == nil {
			_ = os.WriteFile("/tmp/stomp-fail.thrv", b, 0o600)
		}
	}
}

// springRefusals are the Spring Board app's counts of refusals.
var springRefusals = []string{"login refused", "login redirects", "unknown session", "403 csrf", "403 origin", "404 foreign", "404 missing", //nolint:gochecknoglobals // constant
	"404 route", "405 method", "400 bad request", "400 firewall", "400 handshake", "form invalid", "stomp csrf", "stomp foreign",
	"stomp missing", "stomp denied", "stomp bad frame", "stomp invalid", "stomp dropped"}
