package replay_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/internal/apptest"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/traces"
)

// TestOIDCInChromium: browsers log in to an app through an OpenID Connect
// provider on another origin (authorization code with PKCE, the state in
// the redirect, the IdP's login form and the callback; the code redeemed
// by the app server itself), recorded by the forward proxy, five contexts
// at once: one session per context across both origins. Replayed as 30
// users with a users file, every user logs in at the app, and neither the
// IdP nor the app refuses anything: no state mismatch, no reused code, no
// PKCE failure, no foreign note.
func TestOIDCInChromium(t *testing.T) {
	t.Parallel() // a browser of its own, an app of its own: overlaps the others' waits
	app := apptest.NewOIDC(t)
	const contexts = 5
	// Only the two origins are in scope: Chromium's own calls home are
	// relayed, never recorded, never replayed.
	sessions := apptest.RecordForward(t, func(proxy string) {
		browser := apptest.StartBrowserWith(t, "", "--proxy-server="+proxy, "--proxy-bypass-list=<-loopback>")
		pages := make([]*apptest.Page, contexts)
		for i := range pages {
			pages[i] = browser.Open(fmt.Sprintf("%s/login?u=user%d", app.AppURL, i))
		}
		for i, p := range pages {
			if text, err := p.WaitText("root", 60*time.Second); err != nil || text != "done" {
				t.Errorf("browser context %d: the page said %q (%v)", i, text, err)
			}
		}
	}, capture.WithHosts("127.0.0.1"))
	var visits []*traces.Session
	for _, s := range sessions {
		if !s.Strays {
			visits = append(visits, s)
		}
	}
	checkVisits(t, visits, contexts, "POST "+app.IdPURL+"/login", "POST "+app.AppURL+"/logout")
	if t.Failed() {
		return
	}
	app.Counts.Reset()
	const users = 30
	sink := replayVisits(t, app.AppURL, visits, users, "username", "u{{user.index}}", replay.WithOrigin(app.IdPURL, app.IdPURL))
	loggedIn(t, app.Users(), users)
	c := &app.Counts
	for _, refusal := range []string{"idp login refused", "state mismatch", "code reused", "pkce failed", "csrf failed", "404 foreign",
		"login failed", "idp form mismatch", "authorize refused", "code invalid", "code expired", "400", "401", "403"} {
		if c.Get(refusal) > 0 {
			t.Errorf("the app and its IdP counted %s", c.String())
			break
		}
	}
	failures(t, sink)
}
