package replay

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Routes say where a run's requests go: the target, and the recorded
// origins sent elsewhere. Library.Routes makes them of the flags a user
// gave and of what the trace recorded.
type Routes struct {
	// Target is the engine's target: where the requests of the trace's
	// main origin go (a reverse proxy's trace: all of them).
	Target string
	// Origins send each other recorded origin to a URL (WithOrigin).
	Origins [][2]string
	// FromTrace are the URLs of Target and Origins that the trace gave
	// rather than the user.
	FromTrace []string
}

// Options returns the engine options that send the origins where Routes
// say.
func (r *Routes) Options() []Option {
	out := make([]Option, len(r.Origins))
	for i, o := range r.Origins {
		out[i] = WithOrigin(o[0], o[1])
	}
	return out
}

// String lists where the load goes: the target, then each other origin as
// "recorded → URL", or its URL alone where it is unchanged.
func (r Routes) String() string {
	dests := []string{r.Target}
	for _, o := range r.Origins {
		if o[0] == o[1] {
			dests = append(dests, o[1])
		} else {
			dests = append(dests, o[0]+" → "+o[1])
		}
	}
	return strings.Join(dests, ", ")
}

// Remote returns the URLs taken from the trace whose hosts are not
// loopback: load a run would send to hosts nobody named.
func (r *Routes) Remote() []string {
	var out []string
	for _, u := range r.FromTrace {
		p, err := url.Parse(u)
		if err != nil {
			continue
		}
		ip := net.ParseIP(p.Hostname())
		if p.Hostname() == "localhost" || ip != nil && ip.IsLoopback() {
			continue
		}
		out = append(out, u)
	}
	return out
}

// ErrNoTarget is Routes' error when neither the user nor the trace names
// a target.
var ErrNoTarget = errors.New("no target: the trace does not say where it was recorded going")

// ErrMapNoHost is Routes' error for maps of a trace whose requests name
// no host (a reverse proxy's): there is only the target to give.
var ErrMapNoHost = errors.New("map: the trace's requests name no host (a reverse proxy's trace)")

// Routes decides where a run's requests go. target replaces the main
// origin (the one with the most requests, or a reverse proxy's recorded
// target); maps are HOST=URL, sending the recorded origin HOST names (a
// scheme://host:port, a host:port or a host name) to URL. Without them
// each origin's requests go where they were recorded.
func (lib *Library) Routes(target string, maps []string) (Routes, error) {
	var r Routes
	origins := lib.Origins()
	mapped := make([]string, len(origins))
	for _, m := range maps {
		host, to, ok := strings.Cut(m, "=")
		if !ok || host == "" || to == "" {
			return r, fmt.Errorf("map %q: want HOST=URL", m)
		}
		if _, err := parseTarget(to); err != nil {
			return r, fmt.Errorf("map %q: %w", m, err)
		}
		i := slices.IndexFunc(origins, func(o Origin) bool { return originNamed(o.URL, host) })
		if i < 0 {
			return r, fmt.Errorf("map %q: the trace has no request to %s (it has %s)", m, host, originList(origins))
		}
		mapped[i] = to
	}
	if len(origins) == 0 {
		// Requests in origin form: one target, the flag's or the trace's.
		if len(maps) > 0 {
			return r, ErrMapNoHost
		}
		r.Target = target
		if r.Target == "" {
			r.Target = lib.meta.Target
			if r.Target == "" {
				return r, ErrNoTarget
			}
			r.FromTrace = append(r.FromTrace, r.Target)
		}
		return r, nil
	}
	for i, o := range origins {
		to := mapped[i]
		if i == 0 && target != "" {
			to = target
		}
		if to == "" {
			to = o.URL
			r.FromTrace = append(r.FromTrace, to)
		}
		if i == 0 {
			r.Target = to
		} else {
			r.Origins = append(r.Origins, [2]string{o.URL, to})
		}
	}
	return r, nil
}

// originNamed reports whether host names origin: as the whole origin, its
// authority, or its host name.
func originNamed(origin, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "/"))
	if host == origin {
		return true
	}
	_, auth, _ := strings.Cut(origin, "://")
	if host == auth {
		return true
	}
	if h, _, err := net.SplitHostPort(auth); err == nil {
		auth = h
	}
	return host == strings.Trim(auth, "[]")
}

func originList(os []Origin) string {
	names := make([]string, len(os))
	for i, o := range os {
		names[i] = o.URL
	}
	if len(names) == 0 {
		return "no host named: a reverse proxy's trace"
	}
	return strings.Join(names, ", ")
}
