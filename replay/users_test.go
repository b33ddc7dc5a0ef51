package replay

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
)

func TestLoadUsersRejects(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"", "empty"},
		{"username,password\n", "no user rows"},
		{"username,,password\nann,x,y\n", "column 2"},
		{"a,a\n1,2\n", "repeated"},
		{"username,password\nann\n", "wrong number of fields"},
	} {
		if _, err := LoadUsers(strings.NewReader(tc.file)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.file, err, tc.want)
		}
	}
}

func TestUsersTemplates(t *testing.T) {
	u, err := LoadUsers(strings.NewReader("username,password,device\nload{{user.index}},pw-load{{ user.index }},{{random.uuid}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := u.values(3, 1), u.values(4, 1)
	if a[0] != "load3" || a[1] != "pw-load3" || b[0] != "load4" {
		t.Fatalf("values %v %v", a, b)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(a[2]) || a[2] == b[2] || u.values(3, 1)[2] != a[2] {
		t.Fatalf("uuids %q %q: want well formed, one per user, the same on every call", a[2], b[2])
	}
}

// TestUsersFileFillsRequests replays a login whose password capture
// redacted and whose username it kept, with a users file of two rows:
// users take rows round robin, in the JSON body and the query alike.
func TestUsersFileFillsRequests(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.URL.RawQuery+" "+string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	s := &traces.Session{ID: "a", Profile: "browse", Exchanges: []traces.Exchange{{
		Method: "POST", URL: "/login?username=rec-user", Status: 200,
		ReqHeader: []traces.Header{{Name: "Content-Type", Value: "application/json"}},
		ReqBody:   traces.Body{Data: []byte(`{"username":"rec-user","password":"{{password:9a8b7c6d}}"}`)},
	}}}
	users, err := LoadUsers(strings.NewReader("username,password\nann,pw-ann\nbob,pw-bob-longer\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(srv.URL, FromSessions([]*traces.Session{s}), WithUsers(users))
	if err != nil {
		t.Fatal(err)
	}
	for k := range 3 {
		playOnce(e, k, users.values(k, 1))
	}
	want := []string{
		`username=ann {"username":"ann","password":"pw-ann"}`,
		`username=bob {"username":"bob","password":"pw-bob-longer"}`,
		`username=ann {"username":"ann","password":"pw-ann"}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("the server got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
