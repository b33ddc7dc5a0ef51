package capture

import (
	"errors"
	"strconv"

	"github.com/thrive-loadtest/thrive/capture/wire"
)

// What both relays answer themselves and how they record it: a request
// they cannot read gets a 400 (a 501 for a transfer coding they do not
// undo) and is not recorded (there is no exchange to
// replay); a backend that cannot be reached or does not answer gets the
// client a 502, recorded with the reason (exchange.badGateway).

// ownAnswer is a short text response of the proxy's own, with Connection:
// close when closing.
func ownAnswer(status int, reason, body string, closing bool) []byte {
	b := make([]byte, 0, 128+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, reason...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	if closing {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// badRequest logs a request from ip that could not be read and returns the
// 400 to answer it with; the client's connection closes after it.
func (c *Capture) badRequest(ip string, err error) []byte {
	c.cfg.errorLog.Printf("capture: bad request from %s: %v", ip, err)
	if errors.Is(err, wire.ErrUnsupportedCoding) {
		return ownAnswer(501, "Not Implemented", "thrive capture: "+err.Error()+"\n", true)
	}
	return ownAnswer(400, "Bad Request", "thrive capture: "+err.Error()+"\n", true)
}
