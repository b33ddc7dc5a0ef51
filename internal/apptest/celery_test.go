package apptest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// celeryWant checks the counts of whole visits by users, and that nothing
// else was refused but the given counts.
func celeryWant(t *testing.T, a *CeleryImports, users []string, refused map[string]int64) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "imports": 2 * n, "rows served": 2 * n, "logouts": n}
	for _, r := range CeleryRefusals() {
		want[r] = refused[r]
	}
	want["login redirects"] += n
	for name, w := range want {
		if got := a.Counts.Get(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &a.Counts)
		}
	}
	if got := a.Counts.Get("polls"); got < 2*n {
		t.Errorf("polls = %d, want at least %d", got, 2*n)
	}
	if got := a.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
}

func TestCeleryClients(t *testing.T) {
	a := NewCeleryImports(t)
	CeleryImportsClient(t, a.URL, "alice")
	CeleryImportsClient(t, a.URL, "bob")
	celeryWant(t, a, []string{"alice", "bob"}, nil)
}

func TestCeleryClientsAtOnce(t *testing.T) {
	a := NewCeleryImports(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				CeleryImportsClient(t, a.URL, u)
			})
		}
	})
	celeryWant(t, a, users, nil)
}

// TestCelerySlowdown makes tasks three times slower after a first visit:
// the client polls longer and still succeeds.
func TestCelerySlowdown(t *testing.T) {
	a := NewCeleryImports(t)
	CeleryImportsClient(t, a.URL, "quick")
	polls := a.Counts.Get("polls")
	a.Slowdown = 3
	began := time.Now()
	CeleryImportsClient(t, a.URL, "slow")
	// Each task runs at least 3 × 0.4 s, polled every 250 ms.
	if took := time.Since(began); took < 2400*time.Millisecond {
		t.Errorf("the slow visit took %v, want at least 2.4 s", took)
	}
	if more := a.Counts.Get("polls") - polls; more < 2*5 {
		t.Errorf("the slow visit polled %d times, want at least 10", more)
	}
	celeryWant(t, a, []string{"quick", "slow"}, nil)
}

// TestCeleryStates follows one task through its states, in order, with the
// answers' exact shapes, and fetches its rows too early.
func TestCeleryStates(t *testing.T) {
	a := NewCeleryImports(t)
	a.Slowdown = 4 // 1.6 to 6.4 s: every state is seen
	g := newCeleryAgent(t, a.URL)
	g.login("tess")
	csv, rows := celeryMakeCSV()
	var acc celeryAccepted
	ans := g.upload(csv, "contacts.csv", http.StatusAccepted, &acc)
	body := `{"task_id":"` + acc.TaskID + `","state":"PENDING","status_url":"/api/imports/tasks/` + acc.TaskID + `/"}`
	if string(ans.Body) != body || ans.Header.Get("Location") != acc.StatusURL {
		t.Fatalf("202: %s, Location %q; want %s", ans.Body, ans.Header.Get("Location"), body)
	}
	// The import is the first, so its id is 1: its rows are not ready.
	var detail celeryDetail
	g.api(http.MethodGet, "/api/imports/1/rows/", "", http.StatusConflict, &detail)
	if !regexp.MustCompile(`^Import 1 is not ready \((PENDING|STARTED|PROGRESS)\)\.$`).MatchString(detail.Detail) {
		t.Errorf("409 detail %q", detail.Detail)
	}
	if got := a.Counts.Get("409 not ready"); got != 1 {
		t.Errorf(`"409 not ready" = %d, want 1`, got)
	}
	shapes := map[string]*regexp.Regexp{
		"PENDING":  regexp.MustCompile(`^\{"task_id":"` + acc.TaskID + `","state":"PENDING","info":null,"result":null\}$`),
		"STARTED":  regexp.MustCompile(`^\{"task_id":"` + acc.TaskID + `","state":"STARTED","info":\{"pid":512[3-6],"hostname":"celery@worker-1"\},"result":null\}$`),
		"PROGRESS": regexp.MustCompile(`^\{"task_id":"` + acc.TaskID + `","state":"PROGRESS","info":\{"current":[0-9],"total":` + strconv.Itoa(len(rows)) + `\},"result":null\}$`),
		"SUCCESS": regexp.MustCompile(`^\{"task_id":"` + acc.TaskID + `","state":"SUCCESS","info":\{"current":` + strconv.Itoa(len(rows)) + `,"total":` + strconv.Itoa(len(rows)) +
			`\},"result":\{"import_id":1,"rows":` + strconv.Itoa(len(rows)) + `\}\}$`),
	}
	order := []string{"PENDING", "STARTED", "PROGRESS", "SUCCESS"}
	var seen []string
	last := -1
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ans := g.api(http.MethodGet, acc.StatusURL, "", http.StatusOK, nil)
		var st celeryPoll
		_ = json.Unmarshal(ans.Body, &st)
		if re := shapes[st.State]; re == nil || !re.Match(ans.Body) {
			t.Fatalf("poll: %s", ans.Body)
		}
		i := slices.Index(order, st.State)
		if i < last {
			t.Fatalf("poll: %s after %s", st.State, order[last])
		}
		if i > last {
			seen = append(seen, st.State)
		}
		last = i
		if st.State == "SUCCESS" {
			break
		}
	}
	if !slices.Equal(seen, order) {
		t.Errorf("states seen %v, want %v", seen, order)
	}
	var page celeryPage
	g.api(http.MethodGet, "/api/imports/1/rows/", "", http.StatusOK, &page)
	if page.Count != len(rows) {
		t.Errorf("rows: %+v", page)
	}
	if got := a.Counts.Get("409 not ready"); got != 1 {
		t.Errorf(`"409 not ready" = %d, want 1`, got)
	}
}

// TestCeleryFailure posts a CSV with a bad amount: the serializer takes it,
// the task fails when it reaches that row.
func TestCeleryFailure(t *testing.T) {
	a := NewCeleryImports(t)
	g := newCeleryAgent(t, a.URL)
	g.login("fay")
	var acc celeryAccepted
	g.upload("name,email,amount\r\nFay Ito,fay@example.test,1.5\r\nFay Lee,fay.lee@example.test,lots\r\n", "bad.csv", http.StatusAccepted, &acc)
	var st celeryPoll
	for deadline := time.Now().Add(time.Minute); st.State != "FAILURE"; time.Sleep(100 * time.Millisecond) {
		ans := g.api(http.MethodGet, acc.StatusURL, "", http.StatusOK, &st)
		if time.Now().After(deadline) || st.State == "SUCCESS" {
			t.Fatalf("poll: %s", ans.Body)
		}
		if st.State == "FAILURE" && !strings.Contains(string(ans.Body), `"info":{"exc_type":"ValueError","exc_message":["line 3: \"lots\" is not a valid amount"],"exc_module":"builtins"},"result":null}`) {
			t.Errorf("FAILURE: %s", ans.Body)
		}
	}
	g.api(http.MethodGet, acc.StatusURL, "", http.StatusOK, &st)
	g.api(http.MethodGet, "/api/imports/1/rows/", "", http.StatusConflict, nil)
	if a.Counts.Get("tasks failed") != 1 || a.Counts.Get("409 not ready") != 1 {
		t.Errorf("counts: %s", &a.Counts)
	}
}

// TestCeleryStrict checks the refusals, each counted.
func TestCeleryStrict(t *testing.T) {
	a := NewCeleryImports(t)
	count := func(name string, want int64) {
		t.Helper()
		if got := a.Counts.Get(name); got != want {
			t.Errorf("count %q = %d, want %d (%s)", name, got, want, &a.Counts)
		}
	}
	detail := func(ans Answer, want string) {
		t.Helper()
		var d celeryDetail
		if err := json.Unmarshal(ans.Body, &d); err != nil || d.Detail != want {
			t.Errorf("answer %d %s, want detail %q", ans.Status, ans.Body, want)
		}
	}

	// The login form's token, stale once the login rotated the secret.
	g := newCeleryAgent(t, a.URL)
	login := g.do(http.MethodGet, "/accounts/login/", "")
	stale := celeryTokenRE.FindStringSubmatch(string(login.Body))[1]
	if sc := login.Header.Get("Set-Cookie"); !regexp.MustCompile(`^csrftoken=[A-Za-z0-9]{32}; expires=[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT; Max-Age=31449600; Path=/; SameSite=Lax$`).MatchString(sc) {
		t.Errorf("login page Set-Cookie %q", sc)
	}
	page := g.login("alice")
	csv, _ := celeryMakeCSV()
	ans := g.api(http.MethodPost, "/api/imports/", csv, http.StatusForbidden, nil, "Content-Type", "text/csv", "X-CSRFToken", stale)
	detail(ans, "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect.")
	ans = g.do(http.MethodPost, "/accounts/logout/", "csrfmiddlewaretoken="+stale, "Content-Type", "application/x-www-form-urlencoded")
	if ans.Status != http.StatusForbidden || !strings.Contains(string(ans.Body), "CSRF verification failed. Request aborted.") {
		t.Errorf("logout with a stale token: %d %s", ans.Status, ans.Body)
	}
	ans = g.api(http.MethodPost, "/api/imports/", "{}", http.StatusForbidden, nil, "Content-Type", "application/json")
	detail(ans, "CSRF Failed: CSRF token missing.")
	count("403 csrf", 3)

	// Bad uploads.
	tok := g.cookie("csrftoken")
	ans = g.api(http.MethodPost, "/api/imports/", "a,b", http.StatusUnsupportedMediaType, nil, "Content-Type", "text/csv", "X-CSRFToken", tok)
	detail(ans, `Unsupported media type "text/csv" in request.`)
	if ans := g.api(http.MethodPost, "/api/imports/", "{}", http.StatusBadRequest, nil, "Content-Type", "application/json", "X-CSRFToken", tok); string(ans.Body) != `{"file":["No file was submitted."]}` {
		t.Errorf("JSON upload: %s", ans.Body)
	}
	if ans := g.upload("name,mail\r\nx,y\r\n", "x.csv", http.StatusBadRequest, nil); string(ans.Body) != `{"file":["Expected the header row name,email,amount."]}` {
		t.Errorf("bad header: %s", ans.Body)
	}
	g.upload("name,email,amount\r\nAl,al@example.test\r\n", "x.csv", http.StatusBadRequest, nil)
	g.upload("", "x.csv", http.StatusBadRequest, nil)
	count("400 invalid csv", 4)
	count("415 media type", 1)

	// alice's task and import, and bob's tries at them.
	var acc celeryAccepted
	g.upload(csv, "contacts.csv", http.StatusAccepted, &acc)
	st, _ := g.wait(acc.StatusURL)
	rowsURL := "/api/imports/" + strconv.Itoa(st.Result.ImportID) + "/rows/"
	bob := newCeleryAgent(t, a.URL)
	bob.login("bob")
	detail(bob.api(http.MethodGet, acc.StatusURL, "", http.StatusNotFound, nil), "No Import matches the given query.")
	detail(bob.api(http.MethodGet, rowsURL, "", http.StatusNotFound, nil), "No Import matches the given query.")
	count("404 foreign", 2)
	bob.api(http.MethodGet, "/api/imports/tasks/"+celeryUUID4()+"/", "", http.StatusNotFound, nil)
	bob.api(http.MethodGet, "/api/imports/99/rows/", "", http.StatusNotFound, nil)
	if ans := bob.do(http.MethodGet, "/api/imports/tasks/"+strings.ToUpper(acc.TaskID)+"/", ""); ans.Status != http.StatusNotFound ||
		!strings.Contains(string(ans.Body), "<h1>Not Found</h1>") {
		t.Errorf("an upper-case task id: %d %s", ans.Status, ans.Body)
	}
	detail(g.api(http.MethodGet, rowsURL+"?page=2", "", http.StatusNotFound, nil), "Invalid page.")
	count("404 missing", 3)
	if ans := g.do(http.MethodGet, rowsURL[:len(rowsURL)-1], ""); ans.Status != http.StatusMovedPermanently || ans.Header.Get("Location") != rowsURL {
		t.Errorf("no slash: %d %v", ans.Status, ans.Header)
	}
	count("append slash", 1)

	// Wrong and dead session ids.
	anon := newCeleryAgent(t, a.URL)
	ans = Do(t, anon.c, http.MethodGet, a.URL+"/imports/?u=alice", "", "Cookie", "sessionid=abcdefghijklmnopqrstuvwxyz012345")
	if ans.Status != http.StatusFound || ans.Header.Get("Location") != "/accounts/login/?next=/imports/%3Fu%3Dalice" ||
		ans.Header.Get("Set-Cookie") != `sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax` {
		t.Errorf("a wrong session id: %d %v", ans.Status, ans.Header)
	}
	ans = Do(t, anon.c, http.MethodGet, a.URL+acc.StatusURL, "", "Cookie", "sessionid=abcdefghijklmnopqrstuvwxyz012345")
	if ans.Status != http.StatusForbidden || string(ans.Body) != `{"detail":"Authentication credentials were not provided."}` {
		t.Errorf("a wrong session id on the API: %d %s", ans.Status, ans.Body)
	}
	count("unknown sessions", 2)
	count("403 not authenticated", 1)
	sid := g.cookie("sessionid")
	g.logout(page)
	ans = Do(t, anon.c, http.MethodGet, a.URL+acc.StatusURL, "", "Cookie", "sessionid="+sid)
	if ans.Status != http.StatusForbidden {
		t.Errorf("a logged-out session id: %d %s", ans.Status, ans.Body)
	}
	count("unknown sessions", 3)
	count("403 not authenticated", 2)

	// The login form refused, a GET logout, an unknown path.
	ans = anon.do(http.MethodGet, "/accounts/login/", "")
	form := "csrfmiddlewaretoken=" + celeryTokenRE.FindStringSubmatch(string(ans.Body))[1] + "&username=alice&password=pw-bob&next=/imports/"
	ans = anon.do(http.MethodPost, "/accounts/login/", form, "Content-Type", "application/x-www-form-urlencoded")
	if ans.Status != http.StatusOK || !strings.Contains(string(ans.Body), "Please enter a correct username and password.") {
		t.Errorf("a wrong password: %d %s", ans.Status, ans.Body)
	}
	count("login refused", 1)
	if ans := anon.do(http.MethodGet, "/accounts/logout/", ""); ans.Status != http.StatusMethodNotAllowed || ans.Header.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("GET logout: %d %v", ans.Status, ans.Header)
	}
	if ans := bob.api(http.MethodDelete, acc.StatusURL, "", http.StatusForbidden, nil); !strings.Contains(string(ans.Body), "CSRF") {
		t.Errorf("DELETE without a token: %s", ans.Body)
	}
	bob.api(http.MethodDelete, acc.StatusURL, "", http.StatusMethodNotAllowed, nil, "X-CSRFToken", bob.cookie("csrftoken"))
	count("405 method", 2)
	if ans := anon.do(http.MethodGet, "/favicon.ico", ""); ans.Status != http.StatusNotFound {
		t.Errorf("favicon: %d", ans.Status)
	}
	count("404 route", 2)
	count("403 csrf", 4)
	if got := a.Users(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("Users() = %q", got)
	}
}

// TestCeleryBrowser has Chromium do two visits at once.
func TestCeleryBrowser(t *testing.T) {
	a := NewCeleryImports(t)
	b := StartBrowser(t)
	users := []string{"user0", "user1"}
	pages := make([]*Page, len(users))
	for i, u := range users {
		pages[i] = b.Open(a.URL + "/imports/?u=" + u)
	}
	for i, p := range pages {
		got, err := p.WaitText("root", 60*time.Second)
		if err != nil || got != "done" {
			t.Fatalf("%s: root %q, %v (%s)", users[i], got, err, &a.Counts)
		}
	}
	celeryWant(t, a, users, nil)
}
