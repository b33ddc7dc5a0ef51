// Command loopsend is the floor for a generator's CPU per request at a
// fixed rate: every period it writes one fixed GET on each of its
// keep-alive connections, from one gnet event loop, and counts the answers
// without parsing them. No schedule per user, no timing, no recording, no
// goroutine per connection. bench/replay-fixed.sh runs it next to thrive
// and hey to show how close a sender written in Go can come. A module of
// its own, so that thrive does not depend on gnet.
//
//	cd bench/loopsend && go run . -addr 127.0.0.1:18103 -conns 50 -every 25ms -d 10s
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// sender writes on its connections every period until it is told to stop.
type sender struct {
	gnet.BuiltinEventEngine
	req   []byte
	every time.Duration

	mu      sync.Mutex
	conns   []gnet.Conn
	sending bool

	answers atomic.Int64
}

func (s *sender) OnTick() (time.Duration, gnet.Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sending {
		for _, c := range s.conns {
			_, _ = c.Write(s.req)
		}
	}
	return s.every, gnet.None
}

func (s *sender) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	s.answers.Add(int64(bytes.Count(buf, []byte("HTTP/1.1 "))))
	return gnet.None
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18103", "target host:port (loopback)")
	conns := flag.Int("conns", 50, "keep-alive connections")
	every := flag.Duration("every", 25*time.Millisecond, "one request per connection this often")
	d := flag.Duration("d", 10*time.Second, "how long to send")
	flag.Parse()
	s := &sender{req: []byte("GET /api/projects/7/ HTTP/1.1\r\nHost: target\r\n\r\n"), every: *every}
	cli, err := gnet.NewClient(s, gnet.WithTicker(true), gnet.WithMulticore(false))
	if err != nil {
		log.Fatal(err)
	}
	if err := cli.Start(); err != nil {
		log.Fatal(err)
	}
	for range *conns {
		c, err := cli.Dial("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.sending = true
	s.mu.Unlock()
	time.Sleep(*d) // the run's length, not synchronisation
	s.mu.Lock()
	s.sending = false
	s.mu.Unlock()
	time.Sleep(100 * time.Millisecond) // the last answers
	fmt.Println("answers", s.answers.Load())
	_ = cli.Stop()
}
