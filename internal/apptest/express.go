package apptest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Express is a backend in the style of Express on Node: a session cookie
// named sid (set HttpOnly by the login), short-lived access tokens renewed
// with refresh tokens that rotate on every use (a refresh token used twice
// is refused), and an API that wants both the cookie and a live token.
// Passwords are "pw-" + the user name. Counts: "sessions" (logins),
// "refreshes", "401 expired", "401 refresh" (a refresh token unknown or
// used), "403" (no session cookie), "reads".
type Express struct {
	URL    string
	Counts Counts
	// TokenLife is how long an access token lives.
	TokenLife time.Duration

	mu       sync.Mutex
	sids     map[string]string    // sid → user
	access   map[string]time.Time // access token → expiry
	refresh  map[string]string    // unused refresh token → sid
	accessOf map[string]string    // access token → sid
}

// NewExpress starts an Express on loopback until the test ends.
func NewExpress(tb testing.TB, tokenLife time.Duration) *Express {
	a := &Express{TokenLife: tokenLife, sids: map[string]string{}, access: map[string]time.Time{},
		refresh: map[string]string{}, accessOf: map[string]string{}}
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

func (a *Express) fail(w http.ResponseWriter, status int, what string) {
	a.Counts.Add(strings.TrimSpace(strconv.Itoa(status)+" "+what), 1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q}`, what)
}

// tokens issues an access and a refresh token for sid. Callers hold mu.
func (a *Express) tokens(w http.ResponseWriter, sid string) {
	acc, ref := token(24), token(24)
	a.access[acc] = time.Now().Add(a.TokenLife)
	a.accessOf[acc] = sid
	a.refresh[ref] = sid
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"accessToken":%q,"refreshToken":%q,"expiresIn":%d}`, acc, ref, a.TokenLife.Milliseconds())
}

func (a *Express) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch r.URL.Path {
	case "/":
		fmt.Fprint(w, `<!doctype html><html><body><script src="/bundle.js"></script></body></html>`)
		return
	case "/api/auth/login":
		var in struct{ Username, Password string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Password != "pw-"+in.Username {
			a.fail(w, http.StatusBadRequest, "login")
			return
		}
		sid := "s:" + token(16)
		a.sids[sid] = in.Username
		a.Counts.Add("sessions", 1)
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: sid, Path: "/", HttpOnly: true})
		a.tokens(w, sid)
		return
	}
	sid, _ := r.Cookie("sid")
	if sid == nil || a.sids[sid.Value] == "" {
		a.fail(w, http.StatusForbidden, "")
		return
	}
	switch r.URL.Path {
	case "/api/auth/refresh":
		var in struct{ RefreshToken string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if a.refresh[in.RefreshToken] != sid.Value {
			a.fail(w, http.StatusUnauthorized, "refresh")
			return
		}
		delete(a.refresh, in.RefreshToken)
		a.Counts.Add("refreshes", 1)
		a.tokens(w, sid.Value)
	case "/api/me":
		acc := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if exp, ok := a.access[acc]; !ok || time.Now().After(exp) || a.accessOf[acc] != sid.Value {
			a.fail(w, http.StatusUnauthorized, "expired")
			return
		}
		a.Counts.Add("reads", 1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"user":%q}`, a.sids[sid.Value])
	default:
		a.fail(w, http.StatusNotFound, "")
	}
}

// ExpressClient is a browser using an Express app for about span: it logs
// in, then reads /api/me every step, refreshing its tokens whenever the
// access token is past half its life.
func ExpressClient(tb testing.TB, base, user string, life, step, span time.Duration) {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Jar: jar, Transport: tr}
	Do(tb, c, http.MethodGet, base+"/", "")
	var toks struct{ AccessToken, RefreshToken string }
	a := Do(tb, c, http.MethodPost, base+"/api/auth/login", fmt.Sprintf(`{"username":%q,"password":%q}`, user, "pw-"+user), "Content-Type", "application/json")
	if json.Unmarshal(a.Body, &toks) != nil || toks.AccessToken == "" {
		tb.Fatalf("login: %d %s", a.Status, a.Body)
	}
	issued := time.Now()
	for end := time.Now().Add(span); time.Now().Before(end); {
		if time.Since(issued) > life/2 {
			a := Do(tb, c, http.MethodPost, base+"/api/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, toks.RefreshToken), "Content-Type", "application/json")
			if a.Status != http.StatusOK || json.Unmarshal(a.Body, &toks) != nil {
				tb.Fatalf("refresh: %d %s", a.Status, a.Body)
			}
			issued = time.Now()
		}
		if a := Do(tb, c, http.MethodGet, base+"/api/me", "", "Authorization", "Bearer "+toks.AccessToken); a.Status != http.StatusOK {
			tb.Fatalf("me: %d %s", a.Status, a.Body)
		}
		time.Sleep(step) // the user reads
	}
}
