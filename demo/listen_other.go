//go:build !unix

package demo

import (
	"context"
	"errors"
	"net"
)

// Listen opens a TCP listener on addr. SO_REUSEPORT needs a Unix system.
func Listen(ctx context.Context, addr string, reusePort bool) (net.Listener, error) {
	if reusePort {
		return nil, errors.New("demo: sharing a port between processes needs SO_REUSEPORT, which this system lacks")
	}
	return (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
}
