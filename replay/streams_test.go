package replay_test

import (
	"context"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
	"github.com/thrive-loadtest/thrive/scheduler"
	"github.com/thrive-loadtest/thrive/traces"
)

// run replays sessions as users against target for runTime, every user
// starting at once, and returns what the engine reported.
func run(t *testing.T, target string, sessions []*traces.Session, users int, runTime time.Duration, opts ...replay.Option) (*replay.Engine, *collect) {
	t.Helper()
	lib := replay.FromSessions(sessions)
	e, err := replay.New(target, lib, append([]replay.Option{replay.WithStopTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := scheduler.New(lib.Sessions(), scheduler.Config{Users: users, RunTime: runTime})
	if err != nil {
		t.Fatal(err)
	}
	sink := &collect{}
	if err := e.Run(context.Background(), plan, time.Now(), sink); err != nil {
		t.Fatal(err)
	}
	return e, sink
}

// TestRepliesOfAnyLength records a chat whose every reply streams a random
// number of tokens, and replays it as 50 users against the same server:
// no user sends a message before the reply to the one before is over (the
// server counts messages that came while it streamed), none waits on frames
// that will not come (every user gets through its session in the run), no
// reply is failed or ended by silence, and the SSE streams of any length
// are read to their end.
func TestRepliesOfAnyLength(t *testing.T) {
	for _, tc := range []struct {
		name  string
		style apptest.ChatStyle
	}{
		{"json frames", apptest.ChatJSON},
		{"text frames", apptest.ChatText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chat := apptest.NewChat(t, tc.style)
			const messages = 4
			sessions, _ := apptest.Record(t, chat.URL, func(base string) {
				apptest.ChatClient(t, base, messages, 20*time.Millisecond, tc.style)
			})
			if len(sessions) != 1 {
				t.Fatalf("recorded %d sessions, want 1", len(sessions))
			}
			chat.Messages.Store(0)
			chat.Overlaps.Store(0)
			recordedStreams := chat.Streams.Load()

			const users = 50
			e, sink := run(t, chat.URL, sessions, users, 1500*time.Millisecond)
			var replies, silent int
			for _, s := range sink.samples {
				if s.Failed() {
					t.Errorf("%s %s: status %d, error %q", kind(s.Kind), s.Endpoint, s.Status, s.Err)
				}
				if s.Kind == report.WSReply {
					replies++
					if s.Silent {
						silent++
					}
				}
			}
			if silent > 0 {
				t.Errorf("%d of %d replies ended by silence; their end frame was not recognised", silent, replies)
			}
			if n := chat.Overlaps.Load(); n > 0 {
				t.Errorf("the server got %d messages while it was still streaming the reply before", n)
			}
			whole := 0
			for _, n := range chat.PerConnection() {
				if n == messages {
					whole++
				}
				if n > messages {
					t.Errorf("a connection carried %d messages; the recording had %d", n, messages)
				}
			}
			if whole < users {
				t.Errorf("%d sockets carried all %d messages; want one per user at least (%d); per connection: %v",
					whole, messages, users, chat.PerConnection())
			}
			if got := chat.Streams.Load() - recordedStreams; got < users {
				t.Errorf("%d SSE streams read to their end, want %d at least", got, users)
			}
			if ws := e.WebSocketStats(); ws.FramesSent != chat.Messages.Load() {
				t.Errorf("thrive says it sent %d messages, the server got %d", ws.FramesSent, chat.Messages.Load())
			}
		})
	}
}

func kind(k report.Kind) string {
	switch k {
	case report.WSConnect:
		return "ws-connect"
	case report.WSReply:
		return "ws-reply"
	case report.LongPoll:
		return "long-poll"
	}
	return "http"
}

// TestMessageSentDuringAReply records a user who sent a second message as
// soon as the reply to the first began, and replays it as 50 users: each
// sends the second message at its recorded offset, during the first reply,
// as the user did (the server counts messages that came while it streamed),
// and both replies are timed to their ends.
func TestMessageSentDuringAReply(t *testing.T) {
	chat := apptest.NewChat(t, apptest.ChatJSON)
	chat.MinTokens, chat.MaxTokens = 8, 12
	sessions, _ := apptest.Record(t, chat.URL, func(base string) { apptest.ImpatientChatClient(t, base) })
	if chat.Overlaps.Load() != 1 {
		t.Skipf("the recorded user's second message came after the first reply (%d overlaps): nothing to replay", chat.Overlaps.Load())
	}
	chat.Overlaps.Store(0)
	const users = 50
	_, sink := run(t, chat.URL, sessions, users, time.Second)
	replies := 0
	for _, s := range sink.samples {
		if s.Failed() || s.Silent {
			t.Errorf("%s %s: status %d, error %q, silent %v", kind(s.Kind), s.Endpoint, s.Status, s.Err, s.Silent)
		}
		if s.Kind == report.WSReply {
			replies++
		}
	}
	if n := chat.Overlaps.Load(); n < users/2 {
		t.Errorf("the server got %d messages during a reply from %d users; the recorded user sent one each", n, users)
	}
	if replies < 2*users {
		t.Errorf("%d replies timed, want 2 for each of %d users at least", replies, users)
	}
}
