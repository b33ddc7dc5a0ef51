package capture

import "time"

// WithClientTimeouts sets how long a keep-alive client may idle and how
// long a request's head may take, for tests that cannot wait minutes.
func WithClientTimeouts(idle, head time.Duration) Option {
	return func(c *config) error {
		c.clientIdle, c.headTimeout = idle, head
		return nil
	}
}

// WithLoopBacklog sets how much a receiver on the event loops may leave
// untaken before both connections are cut.
func WithLoopBacklog(n int) Option {
	return func(c *config) error {
		c.loopBacklog = n
		return nil
	}
}

// Stopping reports whether Run has begun to stop: idle connections close
// from then on.
func (c *Capture) Stopping() bool {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	return c.stopping
}

// WithPartLimits sets when a long session hands its finished exchanges on
// in parts (see defaultPartLimits), for tests that cannot record 16 MiB
// and wait 5 s.
func WithPartLimits(bytes int64, exchanges, frames int, settle time.Duration) Option {
	return func(c *config) error {
		c.partLimits = &partLimits{bytes: bytes, exchanges: exchanges, frames: frames, settle: settle}
		return nil
	}
}

// Buffered returns the body bytes held for sessions not yet written.
func (c *Capture) Buffered() int64 { return c.buffered.Load() }
