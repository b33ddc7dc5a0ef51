package apptest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// NewWholeAnswerServer starts h on loopback, as httptest.NewServer does,
// except that each answer leaves in one write, so that a passive recorder
// sees it in one TCP segment. Go's server writes an answer past 4 KiB in
// two writes (its buffer's worth, then the rest); GoReplay 1.3 reassembles
// a message's segments in ten goroutines at once and now and then loses
// the first segment of an answer of two (it writes the second alone, as an
// answer with no request). A test of what thrive makes of GoReplay's file
// serves through this so that GoReplay's loss is not what it measures.
//
// A connection holds what the server writes until the server reads again
// (for the next request, once the answer is finished) or closes it: an
// HTTP/1.1 server writes an answer whole before it reads the next
// request. The server's read that waits for the client while a handler
// runs began before the handler wrote, so it sends nothing early.
func NewWholeAnswerServer(tb testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = wholeListener{srv.Listener}
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv
}

// wholeListener accepts connections that write an answer at once.
type wholeListener struct{ net.Listener }

func (l wholeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &wholeConn{Conn: c}, nil
}

// wholeConn holds what is written to it until it is read from or closed.
type wholeConn struct {
	net.Conn
	mu      sync.Mutex
	pending []byte
}

func (c *wholeConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, b...)
	return len(b), nil
}

// flush writes what is held, in one write.
func (c *wholeConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.pending)
	c.pending = c.pending[:0]
	return err
}

func (c *wholeConn) Read(b []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *wholeConn) Close() error {
	_ = c.flush()
	return c.Conn.Close()
}
