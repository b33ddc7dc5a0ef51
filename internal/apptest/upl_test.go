package apptest

import (
	"bufio"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// uplWant checks the counts of whole visits by users; redirects is the
// number of anonymous requests sent to sign in. No refusal is allowed.
func uplWant(t *testing.T, a *Uploads, redirects int64, users ...string) {
	t.Helper()
	n := int64(len(users))
	want := map[string]int64{"sessions": n, "login redirects": redirects, "blobs created": 2 * n, "objects stored": 2 * n,
		"uploads attached": 2 * n, "downloads": 2 * n, "imports": n, "rows imported": 3 * n, "logouts": n,
		"login refused": 0, "4": 0, "bad": 0, "multipart": 0}
	for name, w := range want {
		if got := a.Counts.Prefix(name); got != w {
			t.Errorf("count %q = %d, want %d (%s)", name, got, w, &a.Counts)
		}
	}
	if got := a.Users(); !slices.Equal(got, users) {
		t.Errorf("Users() = %q, want %q", got, users)
	}
}

func TestUploadsClients(t *testing.T) {
	a := NewUploads(t)
	UploadsClient(t, a.URL, "alice")
	UploadsClient(t, a.URL, "bob")
	uplWant(t, a, 2, "alice", "bob")
	if len(a.uploads) != 4 || len(a.imports) != 2 || a.lastBlob != 4 {
		t.Errorf("%d uploads, %d imports, %d blobs", len(a.uploads), len(a.imports), a.lastBlob)
	}
}

func TestUploadsClientsAtOnce(t *testing.T) {
	a := NewUploads(t)
	users := []string{"ann", "ben", "cat"}
	t.Run("visits", func(t *testing.T) {
		for _, u := range users {
			t.Run(u, func(t *testing.T) {
				t.Parallel()
				UploadsClient(t, a.URL, u)
			})
		}
	})
	uplWant(t, a, 3, users...)
}

// TestUploadsFormats checks the wire formats against their references:
// Marshal of integers, the signed id of blob 1 as Rails 7.0 writes it, and
// SigV4 against AWS's own example of a presigned GET.
func TestUploadsFormats(t *testing.T) {
	for n, want := range map[int]string{0: "\x04\bi\x00", 1: "\x04\bi\x06", 122: "\x04\bi\x7f", 123: "\x04\bi\x01{", 256: "\x04\bi\x02\x00\x01",
		70000: "\x04\bi\x03p\x11\x01"} {
		if got := string(uplMarshalInt(n)); got != want {
			t.Errorf("Marshal.dump(%d) = %q, want %q", n, got, want)
		}
		if back, ok := uplUnmarshalInt([]byte(want)); !ok || back != n {
			t.Errorf("Marshal.load(%q) = %d, %v", want, back, ok)
		}
	}
	a := NewUploads(t)
	sid := a.signedID(1)
	if !regexp.MustCompile(`^eyJfcmFpbHMiOnsibWVzc2FnZSI6IkJBaHBCZz09IiwiZXhwIjpudWxsLCJwdXIiOiJibG9iX2lkIn19--[0-9a-f]{40}$`).MatchString(sid) {
		t.Errorf("signed id of blob 1: %s", sid)
	}
	if id, ok := a.blobID(sid); !ok || id != 1 {
		t.Errorf("signed id %s verifies as %d, %v", sid, id, ok)
	}
	if _, ok := a.blobID(strings.Replace(sid, "--", "--0", 1)[:len(sid)]); ok {
		t.Error("a forged digest verifies")
	}
	// https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
	date := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	q := url.Values{"X-Amz-Algorithm": {"AWS4-HMAC-SHA256"}, "X-Amz-Credential": {"AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"},
		"X-Amz-Date": {"20130524T000000Z"}, "X-Amz-Expires": {"86400"}, "X-Amz-SignedHeaders": {"host"}}
	if _, _, sig := uplSign("GET", "/test.txt", q, map[string]string{"host": "examplebucket.s3.amazonaws.com"}, date); sig != "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404" {
		t.Errorf("SigV4 of AWS's example: %s", sig)
	}
}

// TestUploadsCookie checks the session cookie: Rails' encrypted format,
// written again with each answer that read the session, reset by signing
// in, not written by a refusal.
func TestUploadsCookie(t *testing.T) {
	a := NewUploads(t)
	u := newUplUser(t, a.URL)
	cookieRE := regexp.MustCompile(`^_files_session=([A-Za-z0-9%]+--[A-Za-z0-9%]+--[A-Za-z0-9%]+); path=/; HttpOnly; SameSite=Lax$`)
	read := func(what string, ans Answer) *uplSession {
		t.Helper()
		m := cookieRE.FindStringSubmatch(ans.Header.Get("Set-Cookie"))
		if m == nil {
			t.Fatalf("%s: Set-Cookie %q", what, ans.Header.Values("Set-Cookie"))
		}
		s := a.open(m[1])
		if s == nil {
			t.Fatalf("%s: the cookie %q does not decrypt", what, m[1])
		}
		return s
	}
	ans := u.do(http.MethodGet, "/uploads?u=zoe", "", http.StatusFound)
	if s := read("anonymous", ans); s.ReturnTo != a.URL+"/uploads?u=zoe" || s.UserID != 0 {
		t.Errorf("anonymous: session %+v", s)
	}
	u.get("/session/new")
	if !strings.Contains(u.page, `<meta name="return-to" content="`+a.URL+`/uploads?u=zoe" />`) {
		t.Errorf("the sign-in page does not name the return path: %.600s", u.page)
	}
	before := read("sign-in page", u.do(http.MethodGet, "/session/new", "", http.StatusOK))
	u.get("/session/new")
	v := url.Values{"authenticity_token": {u.token("post", "/session")}, "email_address": {"zoe@example.test"}, "password": {"pw-zoe"}}
	ans = u.do(http.MethodPost, "/session", v.Encode(), http.StatusFound, "Content-Type", "application/x-www-form-urlencoded")
	if s := read("sign-in", ans); s.UserID == 0 || s.SessionID == before.SessionID || s.CSRF != "" || s.ReturnTo != "" {
		t.Errorf("signed in: session %+v, was %+v", s, before)
	}
	if loc := ans.Header.Get("Location"); loc != a.URL+"/uploads?u=zoe" {
		t.Errorf("signed in, sent to %q", loc)
	}
	if ans := u.do(http.MethodGet, "/uploads/77", "", http.StatusNotFound); ans.Header.Get("Set-Cookie") != "" {
		t.Errorf("a 404 sets %q", ans.Header.Get("Set-Cookie"))
	}
}

// uplRaw sends a request on a connection of its own, its body cut off
// after cut bytes of a Content-Length of len(body).
func uplRaw(t *testing.T, base, path, ctype, cookie, body string, cut int) int {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	var d net.Dialer
	conn, err := d.DialContext(t.Context(), "tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nCookie: %s\r\nOrigin: %s\r\n\r\n%s",
		path, host, ctype, len(body), cookie, base, body[:cut])
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestUploadsRefusals(t *testing.T) {
	a := NewUploads(t)
	alice, bob, anon := newUplUser(t, a.URL), newUplUser(t, a.URL), newUplUser(t, a.URL)
	alice.get("/session/new")
	staleToken := alice.token("post", "/session") // of the session before signing in
	alice.get(alice.signIn("alice"))
	uploadsPage := alice.page
	content := "alice's own\n"
	blob := alice.directUpload("a.txt", content)
	alice.put(blob, content, http.StatusOK)
	upload := alice.attach(blob.SignedID, http.StatusFound)
	alice.get(upload)
	link := alice.find(uplDownloadRE)
	alice.get("/imports/new")
	imp := alice.importCSV(uplCSV("alice"), http.StatusFound)
	alice.page = uploadsPage
	unput := alice.directUpload("b.txt", "never sent\n")
	fresh := alice.directUpload("c.txt", "sent wrong\n")
	meta := alice.find(uplMetaRE)
	cookie := ""
	if u, _ := url.Parse(a.URL); len(alice.c.Jar.Cookies(u)) == 1 {
		cookie = uplCookie + "=" + alice.c.Jar.Cookies(u)[0].Value
	}

	bob.get("/session/new")
	bob.get(bob.signIn("bob"))
	bobMeta := bob.find(uplMetaRE)
	bobBlob := bob.directUpload("a.txt", "bob's\n")
	bob.put(bobBlob, "bob's\n", http.StatusOK)
	anon.get("/session/new")

	md5of := func(s string) string { sum := md5.Sum([]byte(s)); return base64.StdEncoding.EncodeToString(sum[:]) }
	multi := func(fields ...uplField) (string, []string) {
		body, ct := uplFormData(fields...)
		return body, []string{"Content-Type", ct, "Origin", a.URL}
	}
	tok := uplField{name: "authenticity_token", value: meta}
	csvFile := uplField{name: "import[file]", value: uplCSV("alice"), filename: "contacts.csv", ctype: "text/csv"}
	attachBody, attachHeader := multi(tok, uplField{name: "upload[file]", value: blob.SignedID})
	bobsBody, bobsHeader := multi(tok, uplField{name: "upload[file]", value: bobBlob.SignedID})
	unputBody, unputHeader := multi(tok, uplField{name: "upload[file]", value: unput.SignedID})
	forged := strings.Replace(blob.SignedID, "--", "--f", 1)[:len(blob.SignedID)]
	forgedBody, forgedHeader := multi(tok, uplField{name: "upload[file]", value: forged})
	noTokenBody, noTokenHeader := multi(uplField{name: "import[kind]", value: "contacts"}, csvFile)
	staleBody, staleHeader := multi(uplField{name: "authenticity_token", value: staleToken}, uplField{name: "upload[file]", value: unput.SignedID})
	kindBody, kindHeader := multi(tok, uplField{name: "import[kind]", value: "invoices"}, csvFile)
	goodBody, goodHeader := multi(tok, uplField{name: "import[kind]", value: "contacts"}, csvFile)
	boundary := strings.TrimPrefix(goodHeader[1], "multipart/form-data; boundary=")
	dupJSON := `{"blob":{"filename":"x.txt","content_type":"text/plain","byte_size":3,"checksum":"` + md5of("xyz") + `"}}`
	jsonHeader := []string{"Content-Type", "application/json", "Accept", "application/json", "Origin", a.URL}
	put := func(b uplBlobJSON, md5 string) []string {
		return []string{"Content-Type", b.DirectUpload.Headers["Content-Type"], "Content-MD5", md5}
	}
	expired := a.presign(http.MethodPut, strings.TrimPrefix(a.URL, "http://"), fresh.Key,
		map[string]string{"content-type": "text/plain", "content-md5": md5of("sent wrong\n")}, nil, time.Now().Add(-6*time.Minute))
	otherKey := strings.Replace(fresh.DirectUpload.URL, fresh.Key, unput.Key, 1)
	sigRE := regexp.MustCompile(`X-Amz-Signature=[0-9a-f]+`)

	cases := []struct {
		name       string
		who        *uplUser
		method     string
		path, body string
		header     []string
		status     int
		count, has string // the count that goes up by one; what the body or Location has
	}{
		{"a stale token replayed", alice, "POST", "/uploads", staleBody, staleHeader, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"alice's token used by bob", bob, "POST", "/imports", goodBody, goodHeader, 422, "422 csrf", "InvalidAuthenticityToken"},
		{"no token in the multipart body", alice, "POST", "/imports", noTokenBody, noTokenHeader, 422, "422 csrf", "Can&#39;t verify CSRF token"},
		{"another origin", alice, "POST", "/imports", goodBody, []string{"Content-Type", goodHeader[1], "Origin", "http://evil.example"}, 422, "422 csrf", "HTTP Origin header"},
		{"a direct upload without X-CSRF-Token", alice, "POST", "/rails/active_storage/direct_uploads", dupJSON, jsonHeader, 422, "422 csrf", `{"status":422,"error":"Unprocessable Entity"}`},
		{"a direct upload with bob's token", alice, "POST", "/rails/active_storage/direct_uploads", dupJSON, append([]string{"X-CSRF-Token", bobMeta}, jsonHeader...), 422, "422 csrf", `"status":422`},
		{"a direct upload without a blob", alice, "POST", "/rails/active_storage/direct_uploads", `{"file":{}}`, append([]string{"X-CSRF-Token", meta}, jsonHeader...), 400, "400 params", `"status":400`},
		{"a direct upload without a checksum", alice, "POST", "/rails/active_storage/direct_uploads", `{"blob":{"filename":"x.txt","content_type":"text/plain","byte_size":3}}`, append([]string{"X-CSRF-Token", meta}, jsonHeader...), 422, "422 invalid", `"status":422`},
		{"an anonymous direct upload", anon, "POST", "/rails/active_storage/direct_uploads", dupJSON, append([]string{"X-CSRF-Token", anon.find(uplMetaRE)}, jsonHeader...), 302, "login redirects", a.URL + "/session/new"},
		{"the same signed_id attached again", alice, "POST", "/uploads", attachBody, attachHeader, 422, "bad signed_id", "File is attached already"},
		{"bob's signed_id", alice, "POST", "/uploads", bobsBody, bobsHeader, 422, "bad signed_id", "another user&#39;s blob"},
		{"a blob never uploaded", alice, "POST", "/uploads", unputBody, unputHeader, 422, "bad signed_id", "File has not been uploaded"},
		{"a forged signed_id", alice, "POST", "/uploads", forgedBody, forgedHeader, 422, "bad signed_id", "InvalidSignature"},
		{"a forged signed_id to download", alice, "GET", strings.Replace(link, "--", "--f", 1), "", nil, 404, "bad signed_id", ""},
		{"the presigned PUT again", alice, "PUT", blob.DirectUpload.URL, content, put(blob, md5of(content)), 403, "403 presigned", "<Code>AccessDenied</Code><Message>Request has already been used"},
		{"a tampered signature", alice, "PUT", sigRE.ReplaceAllString(fresh.DirectUpload.URL, "X-Amz-Signature="+strings.Repeat("0", 64)), "sent wrong\n", put(fresh, md5of("sent wrong\n")), 403, "403 presigned", "<Code>SignatureDoesNotMatch</Code>"},
		{"another blob's key", alice, "PUT", otherKey, "sent wrong\n", put(fresh, md5of("sent wrong\n")), 403, "403 presigned", "<Code>SignatureDoesNotMatch</Code>"},
		{"another Content-MD5", alice, "PUT", fresh.DirectUpload.URL, "other\n", put(fresh, md5of("other\n")), 403, "403 presigned", "<Code>SignatureDoesNotMatch</Code>"},
		{"an expired URL", alice, "PUT", expired, "sent wrong\n", put(fresh, md5of("sent wrong\n")), 403, "403 presigned", "<Message>Request has expired</Message>"},
		{"no signature", alice, "PUT", strings.Split(fresh.DirectUpload.URL, "?")[0], "sent wrong\n", put(fresh, md5of("sent wrong\n")), 403, "403 presigned", "<Code>AccessDenied</Code>"},
		{"a body unlike its MD5", alice, "PUT", fresh.DirectUpload.URL, "sent right\n", put(fresh, md5of("sent wrong\n")), 400, "400 bad digest", "<Code>BadDigest</Code>"},
		{"another user's upload", bob, "GET", upload, "", nil, 404, "404 foreign", "doesn't exist"},
		{"another user's import", bob, "GET", imp, "", nil, 404, "404 foreign", "doesn't exist"},
		{"another user's blob", bob, "GET", link, "", nil, 404, "404 foreign", "doesn't exist"},
		{"no such upload", alice, "GET", "/uploads/999", "", nil, 404, "404 missing", "RecordNotFound"},
		{"wrong password", anon, "POST", "/session", url.Values{"authenticity_token": {anon.token("post", "/session")}, "email_address": {"eve@example.test"}, "password": {"pw-bob"}}.Encode(), []string{"Content-Type", "application/x-www-form-urlencoded"}, 302, "login refused", a.URL + "/session/new"},
		{"a wrong session cookie", anon, "GET", "/uploads", "", []string{"Cookie", uplCookie + "=" + strings.Repeat("A", 40) + "--" + strings.Repeat("B", 16) + "--" + strings.Repeat("C", 24)}, 302, "bad session cookie", a.URL + "/session/new"},
		{"anonymous uploads", anon, "GET", "/uploads", "", nil, 302, "login redirects", a.URL + "/session/new"},
		{"no closing boundary", alice, "POST", "/imports", strings.TrimSuffix(goodBody, "--"+boundary+"--\r\n"), goodHeader, 400, "multipart refused", "closing boundary"},
		{"no boundary", alice, "POST", "/imports", goodBody, []string{"Content-Type", "multipart/form-data", "Origin", a.URL}, 400, "multipart refused", "bad boundary"},
		{"another boundary", alice, "POST", "/imports", goodBody, []string{"Content-Type", "multipart/form-data; boundary=----WebKitFormBoundaryXXXXXXXXXXXXXXXX", "Origin", a.URL}, 400, "multipart refused", "does not begin"},
		{"a part without a name", alice, "POST", "/imports", strings.Replace(goodBody, `name="import[kind]"`, `nom="import[kind]"`, 1), goodHeader, 400, "multipart refused", "Content-Disposition"},
		{"an import of another kind", alice, "POST", "/imports", kindBody, kindHeader, 422, "422 invalid", "Kind is not included in the list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.who.tb = t
			before := a.Counts.Get(tc.count)
			ans := tc.who.do(tc.method, tc.path, tc.body, tc.status, tc.header...)
			if got := a.Counts.Get(tc.count); got != before+1 {
				t.Errorf("count %q went from %d to %d (%s)", tc.count, before, got, &a.Counts)
			}
			if got := ans.Header.Get("Location") + string(ans.Body); !strings.Contains(got, tc.has) {
				t.Errorf("answer %.600q does not have %q", got, tc.has)
			}
		})
	}

	t.Run("a body shorter than its Content-Length", func(t *testing.T) {
		before := a.Counts.Get("multipart refused")
		if got := uplRaw(t, a.URL, "/imports", goodHeader[1], cookie, goodBody, len(goodBody)-20); got != http.StatusBadRequest {
			t.Errorf("status %d", got)
		}
		if a.Counts.Get("multipart refused") != before+1 {
			t.Errorf("not refused: %s", &a.Counts)
		}
	})
	t.Run("a chunked body", func(t *testing.T) {
		before := a.Counts.Get("multipart refused")
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, a.URL+"/imports", io.NopCloser(strings.NewReader(goodBody)))
		req.Header.Set("Content-Type", goodHeader[1])
		resp, err := alice.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || a.Counts.Get("multipart refused") != before+1 {
			t.Errorf("status %d (%s)", resp.StatusCode, &a.Counts)
		}
	})
	t.Run("a presigned GET again", func(t *testing.T) {
		alice.tb = t
		loc := alice.do(http.MethodGet, link, "", http.StatusFound).Header.Get("Location")
		alice.do(http.MethodGet, loc, "", http.StatusOK)
		before := a.Counts.Get("403 presigned")
		alice.do(http.MethodGet, loc, "", http.StatusForbidden)
		if a.Counts.Get("403 presigned") != before+1 || a.Counts.Get("downloads") != 1 {
			t.Errorf("counts %s", &a.Counts)
		}
	})
	// Every refusal left alice's import alone; the good body still imports.
	alice.tb = t
	if loc := alice.post("/imports", goodBody, goodHeader[1], http.StatusFound); !uplShowRE.MatchString(strings.TrimPrefix(loc, a.URL)) {
		t.Errorf("imported, sent to %q", loc)
	}
	if got := a.Counts.Get("imports"); got != 2 {
		t.Errorf("imports = %d (%s)", got, &a.Counts)
	}
}

func TestUploadsBrowser(t *testing.T) {
	b := StartBrowser(t) // skips without Chromium
	a := NewUploads(t)
	users := []string{"alice", "bob"}
	var pages []*Page
	for _, u := range users { // two browser contexts at once
		pages = append(pages, b.Open(a.URL+"/uploads?u="+u))
	}
	for i, p := range pages {
		if text, err := p.WaitText("root", time.Minute); err != nil || text != "done" {
			t.Fatalf("%s: %q, %v (%s)", users[i], text, err, &a.Counts)
		}
	}
	uplWant(t, a, 2, users...)
}
