package apptest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Counts is what a backend counted from its own side, by name: "sessions",
// "403", "404 /api/projects/{id}/", ... It is safe for concurrent use.
type Counts struct {
	mu sync.Mutex
	n  map[string]int64
}

// Add adds d to the count of name.
func (c *Counts) Add(name string, d int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[name] += d
}

// Get returns the count of name.
func (c *Counts) Get(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// Prefix returns the sum of the counts whose names begin with p.
func (c *Counts) Prefix(p string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for k, v := range c.n {
		if strings.HasPrefix(k, p) {
			n += v
		}
	}
	return n
}

// Reset forgets every count.
func (c *Counts) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.n)
}

// String lists the counts, for failure messages.
func (c *Counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(c.n)) {
		fmt.Fprintf(&b, "%s=%d ", k, c.n[k])
	}
	return b.String()
}
