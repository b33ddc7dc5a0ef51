package capture

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Backends close keep-alive connections that stay idle (Node after 5 s,
// gunicorn after 2 s, nginx's keepalive_timeout). A request sent on such a
// connection after a user's pause would get no answer, and the capture,
// which has already passed its body on, could not send it again: a 502 the
// proxy itself caused. So before a connection idle for a while is used
// again, the capture looks whether the backend has closed it, without
// waiting and without taking a byte, and dials a fresh one if so.

// idleCheck is how long a backend connection must have been idle before it
// is looked at: no backend closes one sooner, and a busy connection costs
// nothing.
const idleCheck = 500 * time.Millisecond

// closedWhileIdle reports whether the backend has closed c, or sent
// something unasked (a close_notify, a 408) that means it will: a peek of
// one byte that does not wait. A connection it cannot look into counts as
// open.
func closedWhileIdle(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var buf [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EWOULDBLOCK):
		case err != nil, n >= 0:
			closed = true // EOF (n == 0), a reset, or bytes nobody asked for
		}
		return true // never wait
	})
	return closed
}
