package apptest

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// formsetWant checks the counts of a whole visit by each of users.
func formsetWant(t *testing.T, f *Formset, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": n, "projects created": n, "tasks created": 3 * n,
		"tasks changed": n, "tasks deleted": n, "tasks bulk deleted": 2 * n, "logouts": n, "login refused": 0,
		"403": 0, "403 csrf": 0, "404": 0, "405": 0, "form invalid": 0, "formset invalid": 0, "bulk refused": 0,
		"foreign task touched": 0, "project not found": 0}
	for name, w := range want {
		if got := f.Counts.Get(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &f.Counts)
		}
	}
	if got := f.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tasks) != 0 || len(f.projects) != len(users) {
		t.Errorf("%d tasks and %d projects left, want 0 and %d", len(f.tasks), len(f.projects), len(users))
	}
}

// formsetSnapshot is every task, by id.
func formsetSnapshot(f *Formset) map[int]formsetTask {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int]formsetTask{}
	for id, t := range f.tasks {
		out[id] = *t
	}
	return out
}

func TestFormsetClientsAtOnce(t *testing.T) {
	f := NewFormset(t)
	users := []string{"alice", "bob"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				FormsetClient(t, f.URL, u)
			})
		}
	})
	formsetWant(t, f, users...)
	if got := f.lastTask; got != 6 {
		t.Errorf("last task id %d, want 6", got)
	}
}

// TestFormsetRendering checks the add and change pages' formsets as
// Django renders them.
func TestFormsetRendering(t *testing.T) {
	f := NewFormset(t)
	u := newFormsetUser(t, f.URL)
	u.login("/admin/login/", "carol")
	_, page := u.do(http.MethodGet, formsetAdd, nil, http.StatusOK)
	form := formsetForm(t, page, `id="project_form"`)
	for k, v := range map[string]string{"task_set-TOTAL_FORMS": "3", "task_set-INITIAL_FORMS": "0", "task_set-MIN_NUM_FORMS": "0",
		"task_set-MAX_NUM_FORMS": "1000", "task_set-0-id": "", "task_set-2-project": "", "task_set-__prefix__-title": ""} {
		if got, ok := form[k]; !ok || got[0] != v {
			t.Errorf("add form %s = %q, want %q", k, got, v)
		}
	}
	if form.Has("task_set-3-id") || form.Has("task_set-0-DELETE") {
		t.Errorf("add form has more than three rows, or a ticked DELETE: %v", form)
	}
	change, page := u.add("Carol's", "One", "Two")
	pid := regexp.MustCompile(`\d+`).FindString(change)
	form = formsetForm(t, page, `id="project_form"`)
	for k, v := range map[string]string{"task_set-TOTAL_FORMS": "5", "task_set-INITIAL_FORMS": "2", "task_set-0-id": "1",
		"task_set-1-id": "2", "task_set-0-project": pid, "task_set-1-title": "Two", "task_set-2-id": "", "task_set-4-project": pid} {
		if got, ok := form[k]; !ok || got[0] != v {
			t.Errorf("change form %s = %q, want %q", k, got, v)
		}
	}
	for _, want := range []string{`<input type="hidden" name="task_set-1-id" value="2" id="id_task_set-1-id">`,
		`<input type="checkbox" name="task_set-1-DELETE" id="id_task_set-1-DELETE">`} {
		u.expect("change page", page, want)
	}
	if strings.Contains(page, "task_set-2-DELETE") {
		t.Error("an extra row has a DELETE checkbox")
	}
	// A valid save with an added row and a renamed one.
	form.Set("task_set-2-title", "Three")
	form.Set("task_set-0-title", "One!")
	form.Set("_continue", "1")
	loc, _ := u.do(http.MethodPost, change, form, http.StatusFound)
	if _, page = u.do(http.MethodGet, loc, nil, http.StatusOK); !strings.Contains(page, `name="task_set-2-id" value="3"`) {
		t.Errorf("the added row is not task 3: %.2000s", page)
	}
	if got := []int64{f.Counts.Get("tasks created"), f.Counts.Get("tasks changed")}; !slices.Equal(got, []int64{3, 1}) {
		t.Errorf("created, changed = %d: %s", got, &f.Counts)
	}
}

// formsetPair is alice and bob, each with a project of three tasks.
func formsetPair(t *testing.T) (f *Formset, alice, bob *formsetUser, aliceTasks []string, bobChange, bobPage string) {
	f = NewFormset(t)
	alice, bob = newFormsetUser(t, f.URL), newFormsetUser(t, f.URL)
	alice.login("/admin/login/", "alice")
	bob.login("/admin/login/", "bob")
	_, page := alice.add("Alice's", formsetTitles...)
	for _, m := range regexp.MustCompile(`name="task_set-\d-id" value="(\d+)"`).FindAllStringSubmatch(page, -1) {
		aliceTasks = append(aliceTasks, m[1])
	}
	if len(aliceTasks) != 3 {
		t.Fatalf("alice's tasks %q", aliceTasks)
	}
	bobChange, bobPage = bob.add("Bob's", formsetTitles...)
	return
}

func TestFormsetForeignTask(t *testing.T) {
	f, _, bob, aliceTasks, change, page := formsetPair(t)
	f.mu.Lock()
	alicePID := strconv.Itoa(f.tasks[1].project)
	f.mu.Unlock()
	bobFirst := formsetForm(t, page, `id="project_form"`).Get("task_set-0-id")
	cases := []struct {
		name string
		set  map[string]string
		has  string
	}{
		{"rename another user's task", map[string]string{"task_set-0-id": aliceTasks[0], "task_set-0-title": "Mine now"}, formsetChoice},
		{"delete another user's task", map[string]string{"task_set-1-id": aliceTasks[1], "task_set-1-DELETE": "on"}, formsetChoice},
		{"another user's task in an extra row", map[string]string{"task_set-3-id": aliceTasks[2], "task_set-3-title": "Mine now"}, formsetChoice},
		{"another user's project", map[string]string{"task_set-0-project": alicePID, "task_set-0-title": "Moved"}, "The inline value did not match the parent instance."},
		{"an unknown task", map[string]string{"task_set-0-id": "999", "task_set-0-DELETE": "on"}, formsetChoice},
		{"an existing row without its id", map[string]string{"task_set-1-id": "", "task_set-1-DELETE": "on"}, "This field is required."},
		{"one task twice", map[string]string{"task_set-1-id": bobFirst, "task_set-1-DELETE": "on"}, "Please correct the duplicate data for id"},
		{"an empty title", map[string]string{"task_set-0-title": " "}, "This field is required."},
		{"no management form", map[string]string{"task_set-TOTAL_FORMS": ""}, "ManagementForm data is missing or has been tampered with."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bob.tb = t
			_, page := bob.do(http.MethodGet, change, nil, http.StatusOK) // each case from the page as saved
			before, invalid := formsetSnapshot(f), f.Counts.Get("formset invalid")
			form := formsetForm(t, page, `id="project_form"`)
			form.Set("task_set-2-title", "Also renamed") // a valid edit, which must not be saved either
			for k, v := range tc.set {
				form.Set(k, v)
			}
			form.Set("_save", "Save")
			_, got := bob.do(http.MethodPost, change, form, http.StatusOK)
			bob.expect(tc.name, got, tc.has)
			bob.expect(tc.name, got, `<p class="errornote">`)
			if n := f.Counts.Get("formset invalid"); n != invalid+1 {
				t.Errorf("formset invalid went from %d to %d", invalid, n)
			}
			if after := formsetSnapshot(f); !maps.Equal(before, after) {
				t.Errorf("tasks changed: %v, then %v", before, after)
			}
		})
	}
	bob.tb = t
	for _, name := range []string{"tasks changed", "tasks deleted", "foreign task touched"} {
		if got := f.Counts.Get(name); got != 0 {
			t.Errorf("%s = %d", name, got)
		}
	}
	// Alice's own change page, asked for by bob.
	loc, _ := bob.do(http.MethodGet, fmt.Sprintf("%s%s/change/", formsetProjects, alicePID), nil, http.StatusFound)
	if _, got := bob.do(http.MethodGet, loc, nil, http.StatusOK); loc != "/admin/" || !strings.Contains(got, "doesn’t exist. Perhaps it was deleted?") {
		t.Errorf("bob at alice's project: sent to %q", loc)
	}
}

func TestFormsetForeignBulk(t *testing.T) {
	f, alice, bob, aliceTasks, _, _ := formsetPair(t)
	_, page := bob.do(http.MethodGet, formsetTasks, nil, http.StatusOK)
	var own []string
	for _, m := range regexp.MustCompile(`name="_selected_action" value="(\d+)"`).FindAllStringSubmatch(page, -1) {
		own = append(own, m[1])
	}
	if len(own) != 3 || slices.ContainsFunc(own, func(id string) bool { return slices.Contains(aliceTasks, id) }) {
		t.Fatalf("bob's changelist lists %q; alice's tasks are %q", own, aliceTasks)
	}
	action := func(ids []string, extra ...string) url.Values {
		form := formsetForm(t, page, `id="changelist-form"`)
		form["_selected_action"] = ids
		form.Set("action", "delete_selected")
		for i := 0; i+1 < len(extra); i += 2 {
			form.Set(extra[i], extra[i+1])
		}
		return form
	}
	cases := []struct {
		name string
		form url.Values
	}{
		{"another user's task", action(aliceTasks[:1], "index", "0")},
		{"own and another user's", action([]string{own[0], aliceTasks[1]}, "index", "0")},
		{"confirming another user's", action([]string{own[1], aliceTasks[2]}, "post", "yes")},
		{"nothing selected", action(nil, "index", "0")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bob.tb = t
			tc.form.Set("csrfmiddlewaretoken", formsetForm(t, page, `id="changelist-form"`).Get("csrfmiddlewaretoken"))
			before, refused := formsetSnapshot(f), f.Counts.Get("bulk refused")
			_, got := bob.do(http.MethodPost, formsetTasks, tc.form, http.StatusOK)
			bob.expect(tc.name, got, formsetNoneMsg)
			if n := f.Counts.Get("bulk refused"); n != refused+1 {
				t.Errorf("bulk refused went from %d to %d", refused, n)
			}
			if after := formsetSnapshot(f); !maps.Equal(before, after) {
				t.Errorf("tasks changed: %v, then %v", before, after)
			}
			page = got
		})
	}
	bob.tb = t
	// Bob's own, through the confirmation page.
	_, page = bob.do(http.MethodPost, formsetTasks, action(own, "index", "0"), http.StatusOK)
	bob.expect("confirmation", page, "<li>Tasks: 3</li>")
	loc, _ := bob.do(http.MethodPost, formsetTasks, formsetForm(t, page, `name="post"`), http.StatusFound)
	_, page = bob.do(http.MethodGet, loc, nil, http.StatusOK)
	bob.expect("changelist", page, "Successfully deleted 3 tasks.")
	if got := f.Counts.Get("tasks bulk deleted"); got != 3 {
		t.Errorf("tasks bulk deleted = %d, want 3", got)
	}
	_, page = alice.do(http.MethodGet, formsetTasks, nil, http.StatusOK)
	if n := strings.Count(page, `class="action-select"`); n != 3 || f.Counts.Get("foreign task touched") != 0 {
		t.Errorf("alice has %d tasks left, want 3 (%s)", n, &f.Counts)
	}
}

func TestFormsetRefusals(t *testing.T) {
	f := NewFormset(t)
	u := newFormsetUser(t, f.URL)
	_, page := u.do(http.MethodGet, "/admin/login/", nil, http.StatusOK)
	form := formsetForm(t, page, `id="login-form"`)
	form.Set("username", "eve")
	form.Set("password", "pw-bob")
	_, page = u.do(http.MethodPost, "/admin/login/", form, http.StatusOK)
	u.expect("wrong password", page, `class="errornote"`)
	u.login("/admin/login/", "eve")
	_, page = u.do(http.MethodGet, formsetAdd, nil, http.StatusOK)
	form = formsetForm(t, page, `id="project_form"`)
	form.Set("name", "Eve's")
	form.Set("csrfmiddlewaretoken", "")
	_, page = u.do(http.MethodPost, formsetAdd, form, http.StatusForbidden)
	u.expect("no token", page, "CSRF token missing.")
	u.do(http.MethodGet, "/admin/logout/", nil, http.StatusMethodNotAllowed)
	want := map[string]int64{"login refused": 1, "403 csrf": 1, "405": 1, "sessions": 1, "projects created": 0}
	for name, w := range want {
		if got := f.Counts.Get(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &f.Counts)
		}
	}
}

func TestFormsetBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	f := NewFormset(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(f.URL+"/admin/?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &f.Counts)
		}
	}
	formsetWant(t, f, users...)
}
