package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Driver plays real users against a backend: each session logs in, keeps its
// own cookies and connections like a browser, and runs the tasks of its
// profile with the profile's waits between them (see Profiles).
type Driver struct {
	// Base is the backend's URL, or a capture proxy's in front of it.
	Base string
	// Sessions is how many user sessions to play.
	Sessions int
	// Concurrency is how many sessions run at once; 10 when zero.
	Concurrency int
	// TimeScale divides every wait, so that 100 plays sessions a hundred
	// times faster than real users; 1 when zero.
	TimeScale float64
	// Seed makes the choice of profiles, tasks and waits repeatable: session
	// i makes the same choices whatever the concurrency.
	Seed uint64
	// Timeout bounds each request; 30s when zero.
	Timeout time.Duration
	// UserPrefix names the users the sessions log in as: UserPrefix plus the
	// session's index; "user" when empty.
	UserPrefix string
}

// Validate reports every problem with d's fields.
func (d *Driver) Validate() error {
	var errs []error
	u, err := url.Parse(d.Base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("base %q: want an http or https URL", d.Base))
	}
	if d.Sessions < 0 {
		errs = append(errs, fmt.Errorf("sessions %d: want 0 or more", d.Sessions))
	}
	if d.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d: want 0 (default) or more", d.Concurrency))
	}
	if d.TimeScale < 0 {
		errs = append(errs, fmt.Errorf("time scale %g: want 0 (default) or more", d.TimeScale))
	}
	if d.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", d.Timeout))
	}
	return errors.Join(errs...)
}

// DriveStats is what a Driver run did.
type DriveStats struct {
	Sessions int            `json:"sessions"`
	Profiles map[string]int `json:"profiles"`
	Requests int            `json:"requests"`
	// Failures counts requests that got no answer or an answer of 400 or
	// more that the task did not expect.
	Failures  int            `json:"failures"`
	Status    map[int]int    `json:"status"`
	Endpoints map[string]int `json:"endpoints"`
	// Errors counts transport errors by message, without addresses.
	Errors map[string]int `json:"errors"`
	// ChatMessages counts messages sent over WebSockets; ChatTokens the
	// tokens received back.
	ChatMessages int `json:"chat_messages"`
	ChatTokens   int `json:"chat_tokens"`
	// Imports counts imports started; ImportsDone those seen done.
	Imports     int `json:"imports"`
	ImportsDone int `json:"imports_done"`
	// Users has the figures of each session by the user it logged in as.
	Users map[string]UserStats `json:"-"`
}

// UserStats is what one session did.
type UserStats struct {
	Profile string
	// Requests counts HTTP requests, WebSocket upgrades included.
	Requests int
	// ChatMessages and ChatTokens count the messages the user sent over
	// its WebSocket and the tokens it received back (each reply also ends
	// with one done message).
	ChatMessages, ChatTokens int
	// Imports counts the imports the user started.
	Imports int
	// Endpoints counts the user's requests by endpoint.
	Endpoints map[string]int
}

func (st *DriveStats) add(o *DriveStats) {
	if st.Profiles == nil {
		st.Profiles, st.Status, st.Endpoints, st.Errors = map[string]int{}, map[int]int{}, map[string]int{}, map[string]int{}
	}
	st.Sessions += o.Sessions
	st.Requests += o.Requests
	st.Failures += o.Failures
	st.ChatMessages += o.ChatMessages
	st.ChatTokens += o.ChatTokens
	st.Imports += o.Imports
	st.ImportsDone += o.ImportsDone
	for k, v := range o.Profiles {
		st.Profiles[k] += v
	}
	for k, v := range o.Status {
		st.Status[k] += v
	}
	for k, v := range o.Endpoints {
		st.Endpoints[k] += v
	}
	for k, v := range o.Errors {
		st.Errors[k] += v
	}
	if st.Users == nil {
		st.Users = map[string]UserStats{}
	}
	for k, v := range o.Users {
		st.Users[k] = v
	}
}

// Run plays d.Sessions sessions and returns what they did. It returns early,
// with what was done so far, when ctx ends.
func (d *Driver) Run(ctx context.Context) (DriveStats, error) {
	var total DriveStats
	total.add(&DriveStats{})
	if err := d.Validate(); err != nil {
		return total, fmt.Errorf("demo: driver: %w", err)
	}
	base, _ := url.Parse(strings.TrimSuffix(d.Base, "/"))
	workers := d.Concurrency
	if workers == 0 {
		workers = 10
	}
	next := make(chan int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(workers, max(d.Sessions, 1)) {
		wg.Go(func() {
			for i := range next {
				st := d.session(ctx, base, i)
				mu.Lock()
				total.add(&st)
				mu.Unlock()
			}
		})
	}
feed:
	for i := range d.Sessions {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return total, ctx.Err()
}

// user is one session being played.
type user struct {
	d      *Driver
	base   *url.URL
	rng    *rand.Rand
	client *http.Client
	jar    http.CookieJar
	ws     *websocket.Conn
	st     DriveStats
	// lastProject is the project the user's latest import created.
	lastProject uint64
}

func (d *Driver) session(ctx context.Context, base *url.URL, i int) DriveStats {
	jar, _ := cookiejar.New(nil) // never fails without options
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	// A transport per session: its own connections, as a browser has.
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	defer tr.CloseIdleConnections()
	u := &user{
		d: d, base: base, jar: jar,
		rng:    rand.New(rand.NewPCG(d.Seed, uint64(i))),
		client: &http.Client{Jar: jar, Transport: tr, Timeout: timeout},
	}
	u.st.add(&DriveStats{})
	p := pickProfile(u.rng)
	u.st.Sessions = 1
	u.st.Profiles[p.Name] = 1
	prefix := d.UserPrefix
	if prefix == "" {
		prefix = "user"
	}
	name := fmt.Sprintf("%s%d", prefix, i)
	if u.login(ctx, name) {
		n := p.MinTasks + u.rng.IntN(p.MaxTasks-p.MinTasks+1)
		for range n {
			if !u.wait(ctx, p.WaitMin, p.WaitMax) {
				break
			}
			p.pick(u.rng).run(u, ctx)
		}
	}
	if u.ws != nil {
		// Close as RFC 6455 asks: send a close frame, wait for the server's
		// (bounded), then close the connection.
		_ = u.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = u.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, _, err := u.ws.NextReader(); err != nil {
				break
			}
		}
		u.ws.Close()
	}
	u.st.Users = map[string]UserStats{name: {
		Profile: p.Name, Requests: u.st.Requests, ChatMessages: u.st.ChatMessages, ChatTokens: u.st.ChatTokens,
		Imports: u.st.Imports, Endpoints: maps.Clone(u.st.Endpoints),
	}}
	return u.st
}

// wait sleeps a uniform time in [lo, hi], divided by the time scale.
func (u *user) wait(ctx context.Context, lo, hi time.Duration) bool {
	d := lo + time.Duration(u.rng.Int64N(int64(hi-lo)+1))
	if s := u.d.TimeScale; s > 0 {
		d = time.Duration(float64(d) / s)
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// call sends one request. For unsafe methods it echoes the csrftoken cookie
// in X-CSRFToken, as a single-page app does. endpoint names the request in
// the stats; expect lists statuses that are not failures besides 2xx.
func (u *user) call(ctx context.Context, method, path, endpoint string, in any, out any, expect ...int) (int, bool) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			u.fail(endpoint, err)
			return 0, false
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.base.String()+path, body)
	if err != nil {
		u.fail(endpoint, err)
		return 0, false
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if unsafe(method) {
		for _, c := range u.jar.Cookies(u.base) {
			if c.Name == CSRFCookie {
				req.Header.Set(CSRFHeader, c.Value)
			}
		}
	}
	u.st.Requests++
	u.st.Endpoints[endpoint]++
	resp, err := u.client.Do(req)
	if err != nil {
		u.fail(endpoint, err)
		return 0, false
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	u.st.Status[resp.StatusCode]++
	if err != nil {
		u.fail(endpoint, err)
		return resp.StatusCode, false
	}
	ok := resp.StatusCode < 400
	for _, e := range expect {
		ok = ok || resp.StatusCode == e
	}
	if !ok {
		u.st.Failures++
		return resp.StatusCode, false
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			u.fail(endpoint, fmt.Errorf("decode answer: %w", err))
			return resp.StatusCode, false
		}
	}
	return resp.StatusCode, true
}

func (u *user) fail(endpoint string, err error) {
	u.st.Failures++
	u.st.Errors[endpoint+": "+errorKind(err)]++
}

// errorKind names a transport error without the addresses in its message,
// so that the same failure counts once.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

func (u *user) login(ctx context.Context, name string) bool {
	_, ok := u.call(ctx, http.MethodPost, "/api/auth/login/", "POST /api/auth/login/",
		map[string]string{"username": name, "password": Password(name)}, nil)
	return ok
}
