package replay

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

// cardRows is a board page with a row per card id, each with an edit and a
// delete form of its own token (Rails' per-form CSRF tokens), and a
// changelist of checkboxes valued with the ids.
func cardRows(prefix string, ids ...int) string {
	var b strings.Builder
	b.WriteString(`<html><body><meta name="csrf-token" content="` + prefix + `-meta-token">`)
	for _, id := range ids {
		fmt.Fprintf(&b, `<div><form action="/boards/14-plan/cards/%d" method="post"><input type="hidden" name="_method" value="patch">`+
			`<input type="hidden" name="authenticity_token" value="%s-edit-%d"><input name="card[title]" value="t"></form>`, id, prefix, id)
		fmt.Fprintf(&b, `<form class="button_to" method="post" action="http://app.test/boards/14-plan/cards/%d"><input type="hidden" name="_method" value="delete">`+
			`<button type="submit">Delete</button><input type="hidden" name="authenticity_token" value="%s-delete-%d"></form></div>`, id, prefix, id)
	}
	b.WriteString(`<form action="/admin/tracker/task/" method="post">`)
	for _, id := range ids {
		fmt.Fprintf(&b, `<input type="checkbox" name="_selected_action" value="%d" class="action-select">`, id)
	}
	b.WriteString(`<input type="hidden" name="task_set-0-id" value="121"></form></body></html>`)
	return b.String()
}

// TestCorrelateFormsOfOnePage: the values of a page with several forms
// are placed by their form (method, _method and action shape, which such
// form, which occurrence of the field), so the delete of the second row
// sends the second row's delete token and id in a live page whose tokens
// and ids are all other; a short id in a hidden input named like an id,
// and checkboxes valued with ids, are values too.
func TestCorrelateFormsOfOnePage(t *testing.T) {
	page := cardRows("rec", 7, 8)
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("GET", "/boards/14-plan", "", page),
		exch("POST", "/boards/14-plan/cards/8", "_method=delete&authenticity_token=rec-delete-8", ""),
		exch("POST", "/boards/14-plan/cards/7", "_method=patch&authenticity_token=rec-edit-7&card%5Btitle%5D=new", ""),
		exch("POST", "/admin/tracker/task/", "action=delete_selected&_selected_action=8&task_set-0-id=121", ""),
	}}
	vars, _ := correlate(s, nil)
	live := []byte(cardRows("live", 31, 32))
	want := map[string]string{"rec-delete-8": "live-delete-32", "rec-edit-7": "live-edit-31", "8": "32", "121": "121"}
	found := map[string]bool{}
	for _, v := range vars {
		w, ok := want[v.recorded]
		if !ok {
			continue
		}
		found[v.recorded] = true
		if got, ok := v.place.extract(live, nil); !ok || got != w {
			t.Errorf("%s (%s): extracted %q %v from the live page, want %q", v.recorded, v.rule, got, ok, w)
		}
	}
	for v := range want {
		if !found[v] {
			t.Errorf("no variable for %s; rules:\n%s", v, strings.Join(rules(s), "\n"))
		}
	}
}

// TestCorrelateRedirectQuery: an authorization server's redirect carries
// state and code in its query; the next requests send them back (the
// callback's URL, a form body): each is a variable placed by its parameter,
// found again in a live Location.
func TestCorrelateRedirectQuery(t *testing.T) {
	login := exch("GET", "/login", "", "")
	login.Status = 302
	login.RespHeader = []traces.Header{{Name: "Location", Value: "http://idp.test/authorize?client_id=web&state=st-1a2b3c4d5e6f&nonce=n-998877665544&code_challenge=ch_AbC-dEf123"}}
	authorize := exch("GET", "http://idp.test/authorize?client_id=web&state=st-1a2b3c4d5e6f&nonce=n-998877665544&code_challenge=ch_AbC-dEf123", "",
		`<form method="post" action="/login"><input type="hidden" name="state" value="st-1a2b3c4d5e6f"></form>`)
	post := exch("POST", "http://idp.test/login", "username=u&state=st-1a2b3c4d5e6f", "")
	post.Status = 302
	post.RespHeader = []traces.Header{{Name: "Location", Value: "http://app.test/callback?code=c0de-5f4e3d2c1b0a&state=st-1a2b3c4d5e6f"}}
	s := &traces.Session{Exchanges: []traces.Exchange{login, authorize, post,
		exch("GET", "/callback?code=c0de-5f4e3d2c1b0a&state=st-1a2b3c4d5e6f", "", "")}}
	vars, uses := correlate(s, nil)
	byValue := map[string]variable{}
	for _, v := range vars {
		byValue[v.recorded] = v
	}
	liveLocation := map[string]string{
		"st-1a2b3c4d5e6f":   "http://idp.test/authorize?client_id=web&state=LIVE-STATE&nonce=n-1&code_challenge=x",
		"c0de-5f4e3d2c1b0a": "http://app.test/callback?code=LIVE-CODE&state=LIVE-STATE",
	}
	for value, loc := range liveLocation {
		v, ok := byValue[value]
		if !ok || v.place.param == "" {
			t.Fatalf("%s: no variable from the redirect's query; rules:\n%s", value, strings.Join(rules(s), "\n"))
		}
		got, ok := v.place.extract(nil, func(string) []byte { return []byte(loc) })
		if !ok || !strings.HasPrefix(got, "LIVE-") {
			t.Errorf("%s: extracted %q from %s", v.rule, got, loc)
		}
	}
	if len(uses[3]) == 0 || len(uses[2]) == 0 {
		t.Errorf("the login form and the callback use no variable: %v", uses)
	}
}

// TestCorrelateSlugID: a create answered by a redirect to a slug
// (/boards/14-sprint-planning, Rails' to_param) whose page's script then
// asks for the id alone (/api/boards/14/cards): the id is a variable,
// taken from the live redirect's slug.
func TestCorrelateSlugID(t *testing.T) {
	create := exch("POST", "/boards", "board%5Bname%5D=Sprint+planning", "")
	create.Status = 303
	create.RespHeader = []traces.Header{{Name: "Location", Value: "http://app.test/boards/14-sprint-planning"}}
	s := &traces.Session{Exchanges: []traces.Exchange{create,
		exch("GET", "/boards/14-sprint-planning", "", "<html></html>"),
		exch("GET", "/api/boards/14/cards", "", "[]")}}
	vars, uses := correlate(s, nil)
	for _, k := range uses[2] {
		v := vars[k]
		if v.recorded != "14" || !v.place.prefix {
			continue
		}
		if got, ok := v.place.extract(nil, func(string) []byte { return []byte("/boards/207-sprint-planning") }); !ok || got != "207" {
			t.Fatalf("%s: extracted %q %v", v.rule, got, ok)
		}
		return
	}
	t.Fatalf("the cards request uses no slug id; rules:\n%s", strings.Join(rules(s), "\n"))
}

// TestCorrelateFormSubmission: a request that submits a form of an earlier
// page is that form's, whatever ids collide: board 1's card 1 is deleted
// through its own form (its action, its token, its hidden id) while board
// 1 is also the id a redirect gave; live, the card is 32 of board 15, and
// the request goes to the live form's action with the live form's fields.
func TestCorrelateFormSubmission(t *testing.T) {
	rows := func(board, card int, token string) string {
		return fmt.Sprintf(`<html><body><a href="/boards/%[1]d">board</a><form action="/boards/%[1]d/cards/%[2]d" method="post">`+
			`<input type="hidden" name="_method" value="delete"><input type="hidden" name="authenticity_token" value="%[3]s">`+
			`<input type="hidden" name="card_id" value="%[2]d"><button type="submit">Delete</button></form></body></html>`, board, card, token)
	}
	create := exch("POST", "/boards", "name=plan", "")
	create.Status = 303
	create.RespHeader = []traces.Header{{Name: "Location", Value: "/boards/1"}}
	s := &traces.Session{Exchanges: []traces.Exchange{create,
		exch("GET", "/boards/1", "", rows(1, 1, "rec-token-abc")),
		exch("POST", "/boards/1/cards/1", "_method=delete&authenticity_token=rec-token-abc&card_id=1", "")}}
	vars, uses := correlate(s, nil)
	live := []byte(rows(15, 32, "live-token+/="))
	sv := &sessionVars{script: &script{vars: vars}, live: make([]string, len(vars))}
	for _, k := range uses[2] {
		v := &vars[k]
		got, ok := v.place.extract(live, func(string) []byte { return []byte("/boards/15") })
		if !ok {
			t.Fatalf("%s: not found live", v.rule)
		}
		if v.prefix != "" {
			got = v.prefix + url.QueryEscape(got)
		}
		sv.live[k] = got
	}
	raw := "POST /boards/1/cards/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 57\r\n\r\n_method=delete&authenticity_token=rec-token-abc&card_id=1"
	st := &step{index: 2, uses: uses[2]}
	out := string(substitute(nil, []byte(raw), sv.substitutions(nil, st)))
	want := "POST /boards/15/cards/32 HTTP/1.1\r\nHost: h\r\nContent-Length: 64\r\n\r\n_method=delete&authenticity_token=live-token%2B%2F%3D&card_id=32"
	if out != want {
		t.Fatalf("sent\n%q\nwant\n%q\nrules:\n%s", out, want, strings.Join(rules(s), "\n"))
	}
}

// TestLiveValueEscapedForJSON: a live value with a newline and a quote
// goes into a JSON body as JSON writes it, where the recorded one stood.
func TestLiveValueEscapedForJSON(t *testing.T) {
	s := &traces.Session{Exchanges: []traces.Exchange{
		exch("GET", "/api/draft", "", `{"draft":"draft-text-1234"}`),
		exch("POST", "/api/save", `{"text":"draft-text-1234"}`, "")}}
	lib := FromSessions([]*traces.Session{s})
	sc := &lib.scripts[0]
	sv := &sessionVars{script: sc, live: make([]string, len(sc.vars))}
	for k, v := range sc.vars {
		if got, ok := v.place.extract([]byte(`{"draft":"line one\nsaid \"hi\""}`), nil); ok {
			sv.live[k] = got
		}
	}
	raw := `{"text":"draft-text-1234"}`
	got := string(replaceAll([]byte(raw), sv.substitutions(nil, &sc.steps[1]), false))
	if want := `{"text":"line one\nsaid \"hi\""}`; got != want {
		t.Fatalf("body %s, want %s", got, want)
	}
}
