package synth

import (
	"strconv"

	"github.com/thrive-loadtest/thrive/traces"
)

// AppendRaw appends what s looked like on the wire as HTTP/1.1: each request
// line, headers and body, each status line, headers and body, and each
// WebSocket frame with its frame header (client frames masked, as RFC 6455
// requires). Truncated bodies count at their full size, filled with zeros.
func AppendRaw(dst []byte, s *traces.Session) []byte {
	for i := range s.Exchanges {
		ex := &s.Exchanges[i]
		dst = append(dst, ex.Method...)
		dst = append(dst, ' ')
		dst = append(dst, ex.URL...)
		dst = append(dst, " HTTP/1.1\r\n"...)
		dst = appendHeaders(dst, ex.ReqHeader)
		dst = appendBody(dst, &ex.ReqBody)
		dst = append(dst, "HTTP/1.1 "...)
		dst = strconv.AppendInt(dst, int64(ex.Status), 10)
		dst = append(dst, " OK\r\n"...)
		dst = appendHeaders(dst, ex.RespHeader)
		dst = appendBody(dst, &ex.RespBody)
		if ws := ex.WebSocket; ws != nil {
			for j := range ws.Frames {
				f := &ws.Frames[j]
				n := f.Payload.Len()
				hdr := 2
				switch {
				case n > 65535:
					hdr += 8
				case n > 125:
					hdr += 2
				}
				if f.FromClient {
					hdr += 4
				}
				for range hdr {
					dst = append(dst, 0x81)
				}
				dst = appendBody(dst, &f.Payload)
			}
		}
	}
	return dst
}

func appendHeaders(dst []byte, hs []traces.Header) []byte {
	for _, h := range hs {
		dst = append(dst, h.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

func appendBody(dst []byte, b *traces.Body) []byte {
	dst = append(dst, b.Data...)
	for range b.Len() - int64(len(b.Data)) {
		dst = append(dst, 0)
	}
	return dst
}
