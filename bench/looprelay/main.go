// Command looprelay is bench/copyrelay on an event loop: gnet's loops own
// both connections of each client, so a request is read and passed on by
// the thread that epoll woke, with no goroutine parked or woken per read,
// as nginx works. bench/capture.sh measures it next to nginx, the bare Go
// relay and the capture proxy: it shows what the capture could reach on
// such a loop. A module of its own, so that thrive does not depend on gnet.
//
//	cd bench/looprelay && go run . -listen 127.0.0.1:18085 -target 127.0.0.1:18081
package main

import (
	"context"
	"flag"
	"log"
	"net"

	"github.com/panjf2000/gnet/v2"
)

// relay pairs each client connection with a backend connection registered
// on the same loop; each connection's context is its peer once both exist.
type relay struct {
	gnet.BuiltinEventEngine
	listen string
	target net.Addr
}

func (r *relay) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if c.LocalAddr().String() == r.listen {
		// A client: dial its backend on this loop; what it sends before
		// the backend is connected waits in its buffer.
		done, err := c.EventLoop().Register(gnet.NewContext(context.Background(), c), r.target)
		if err != nil {
			log.Print(err)
			return nil, gnet.Close
		}
		// The dial happens off the loop, and a failed one is told only
		// here: close the client then, as copyrelay does, or it would
		// wait for an answer forever (every ephemeral port towards the
		// target held, on loopback, most of them in TIME-WAIT).
		go func() {
			if res, ok := <-done; ok && res.Err != nil {
				log.Printf("%v: closing the client's connection unanswered", res.Err)
				_ = c.Close() // safe from another goroutine
			}
		}()
		return nil, gnet.None
	}
	// A backend: its context is its client until the two are paired.
	client, ok := c.Context().(gnet.Conn)
	if !ok {
		return nil, gnet.Close
	}
	client.SetContext(c)
	_ = client.Wake(nil) // relay what the client sent meanwhile
	return nil, gnet.None
}

func (r *relay) OnTraffic(c gnet.Conn) gnet.Action {
	peer, ok := c.Context().(gnet.Conn)
	if !ok {
		return gnet.None
	}
	buf, _ := c.Next(-1)
	if len(buf) > 0 {
		if _, err := peer.Write(buf); err != nil {
			return gnet.Close
		}
	}
	return gnet.None
}

func (r *relay) OnClose(c gnet.Conn, _ error) gnet.Action {
	if peer, ok := c.Context().(gnet.Conn); ok {
		_ = c.EventLoop().Close(peer)
	}
	return gnet.None
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18085", "address to listen on")
	target := flag.String("target", "127.0.0.1:18081", "backend host:port")
	flag.Parse()
	addr, err := net.ResolveTCPAddr("tcp", *target)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(gnet.Run(&relay{listen: *listen, target: addr}, "tcp://"+*listen, gnet.WithMulticore(true), gnet.WithReuseAddr(true)))
}
