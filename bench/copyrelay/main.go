// Command copyrelay is the floor for a reverse proxy written in Go: it
// copies bytes both ways between each client connection and a backend
// connection of its own, and does nothing else (no parsing, no recording).
// bench/capture.sh measures it next to nginx and the capture proxy, so what
// the capture adds beyond Go's own network path shows apart.
//
//	go run ./bench/copyrelay -listen 127.0.0.1:18084 -target 127.0.0.1:18081
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"net"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18084", "address to listen on")
	target := flag.String("target", "127.0.0.1:18081", "backend host:port")
	flag.Parse()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go relay(c, *target)
	}
}

func relay(c net.Conn, target string) {
	defer c.Close()
	b, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", target)
	if err != nil {
		// The client's connection closes unanswered: its client sees EOF.
		// On loopback the error is mostly "cannot assign requested
		// address", every ephemeral port towards the target held by a
		// socket, most of them in TIME-WAIT.
		log.Printf("%v: closing the client's connection unanswered", err)
		return
	}
	defer b.Close()
	go func() {
		_, _ = io.Copy(c, b)
		_ = c.Close()
	}()
	_, _ = io.Copy(b, c)
}
