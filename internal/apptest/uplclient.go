package apptest

import (
	"cmp"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// uplVisitJS moves a browser's visit on like a person, one step a page:
// sign in as the u of the start URL /uploads?u=NAME (from the sign-in
// page's return-to), upload a.txt, download it from its page, upload
// b.txt, download it, import a CSV of three contacts, check its page, sign
// out; the sign-in page then says "done". A page acts only as the step it
// expects (a reloaded one does nothing), after 100 to 250 ms, and shows
// anything unexpected as "error: ...".
const uplVisitJS = `(() => {
  const S = sessionStorage, q = s => document.querySelector(s);
  const root = document.getElementById("root"), fail = m => { root.textContent = "error: " + m; };
  const p = location.pathname, qs = new URLSearchParams(location.search), notice = q("#notice").textContent;
  const kind = p === "/session/new" ? "signin" : p === "/uploads" ? "uploads" : /^\/uploads\/\d+$/.test(p) ? "upload"
    : p === "/imports/new" ? "import-new" : /^\/imports\/\d+$/.test(p) ? "import" : p;
  const steps = "signin uploads upload uploads upload import-new import signin".split(" ");
  const n = +(S.getItem("upl.step") || 0), u = S.getItem("upl.u");
  const check = (ok, m) => { if (!ok) throw new Error(m + " at step " + n); };
  const said = t => check(notice === t, "notice " + JSON.stringify(notice));
  const file = () => n < 3 ? "a.txt" : "b.txt", text = f => "Hello from " + u + ": " + f + "\n";
  const give = (input, name, type, body) => { const dt = new DataTransfer(); dt.items.add(new File([body], name, { type })); input.files = dt.files; };
  const upload = () => {
    const f = file(), input = q("#upload_file");
    check(input && input.dataset.directUploadUrl, "no direct upload field");
    give(input, f, "text/plain", text(f));
    input.addEventListener("direct-upload:error", e => fail(e.detail.error));
    q('form[action="/uploads"] input[type="submit"]').click();
  };
  const download = async next => {
    said("Upload was successfully created.");
    const f = file(), a = q("#download");
    check(q("#filename").textContent === f, "the upload is not " + f);
    check(a && a.pathname.startsWith("/rails/active_storage/blobs/redirect/") && a.pathname.endsWith("/" + f), "no download link");
    const r = await fetch(a.href);
    check(r.ok && r.redirected && new URL(r.url).pathname.startsWith("/store/"), "download: " + r.status + " from " + r.url);
    check(await r.text() === text(f), "the download differs");
    q(next).click();
  };
  const acts = [() => {
    const back = q('meta[name="return-to"]');
    const name = qs.get("u") || (back && new URL(back.content, location.href).searchParams.get("u"));
    check(name, "no user in " + location.search + " nor a return-to");
    S.setItem("upl.u", name);
    const f = q('form[action="/session"]:not(.button_to)');
    f.querySelector('[name="email_address"]').value = name + "@example.test";
    f.querySelector('[name="password"]').value = "pw-" + name;
    f.requestSubmit();
  }, upload, () => download('nav a[href="/uploads"]'), upload, () => download('nav a[href="/imports/new"]'), () => {
    const f = q('form[action="/imports"]');
    f.querySelector('[name="import[kind]"]').value = "contacts";
    give(f.querySelector('[name="import[file]"]'), "contacts.csv", "text/csv",
      "name,email\n" + u + "," + u + "@example.test\nAda Lovelace,ada@example.test\nAlan Turing,alan@example.test\n");
    f.requestSubmit();
  }, () => {
    said("Import was successfully created.");
    check(q("#rows").textContent === "3", q("#rows").textContent + " rows imported");
    check([...document.querySelectorAll("#contacts td")].some(td => td.textContent === u), "no row of " + u);
    q('form.button_to[action="/session"]').requestSubmit();
  }, () => { root.textContent = "done"; }];
  if (q("#alert").textContent) return fail(q("#alert").textContent);
  if (kind !== steps[n]) return n > 0 && kind === steps[n - 1] || fail("page " + kind + " at step " + n);
  S.setItem("upl.step", n + 1);
  setTimeout(async () => { try { await acts[n](); } catch (e) { fail(e.message); } }, 100 + Math.random() * 150);
})();`

// UploadsClient is a person visiting an Uploads with a browser, done with
// net/http: the visit of the pages' script from an anonymous GET
// /uploads?u=NAME, each request as Chromium and the pages' scripts send it
// (forms multipart with a WebKit boundary where form_with says so, the
// direct upload's XMLHttpRequests, the download's fetch following the
// redirect). It fails tb on any status but the one expected.
func UploadsClient(tb testing.TB, base, user string) {
	tb.Helper()
	newUplUser(tb, base).visit(user)
}

// uplUser is a browser context of UploadsClient: a cookie jar and
// connections of its own, and the last page.
type uplUser struct {
	tb          testing.TB
	c           *http.Client
	base        string
	page, where string
}

const uplNavigate = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

var (
	uplFormRE     = regexp.MustCompile(`(?s)<form ([^>]*)>(.*?)</form>`)
	uplFieldRE    = regexp.MustCompile(`\b(action|name="_method" value|name="authenticity_token" value)="([^"]*)"`)
	uplMetaRE     = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
	uplDirectRE   = regexp.MustCompile(`data-direct-upload-url="([^"]+)"`)
	uplDownloadRE = regexp.MustCompile(`<a id="download" href="([^"]+)"`)
	uplShowRE     = regexp.MustCompile(`^/(uploads|imports)/(\d+)$`)
)

func newUplUser(tb testing.TB, base string) *uplUser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &uplUser{tb: tb, base: base, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request to path (absolute, or under base) and fails the test
// unless the status is want.
func (u *uplUser) do(method, path, body string, want int, header ...string) Answer {
	u.tb.Helper()
	if strings.HasPrefix(path, "/") {
		path = u.base + path
	}
	ans := Do(u.tb, u.c, method, path, body, header...)
	if ans.Status != want {
		u.tb.Fatalf("%s %s: %d, want %d: %.400s", method, path, ans.Status, want, ans.Body)
	}
	return ans
}

// get navigates to a page and keeps it.
func (u *uplUser) get(path string) {
	u.tb.Helper()
	ans := u.do(http.MethodGet, path, "", http.StatusOK, "Accept", uplNavigate)
	p, _ := url.Parse(strings.TrimPrefix(path, u.base))
	u.page, u.where = string(ans.Body), p.RequestURI()
}

// token is the authenticity_token of the last page's form for method and
// action.
func (u *uplUser) token(method, action string) string {
	u.tb.Helper()
	for _, f := range uplFormRE.FindAllString(u.page, -1) {
		got := map[string]string{}
		for _, m := range uplFieldRE.FindAllStringSubmatch(f, -1) {
			got[strings.TrimSuffix(strings.TrimPrefix(m[1], `name="`), `" value`)] = html.UnescapeString(m[2])
		}
		if got["action"] == action && cmp.Or(got["_method"], "post") == method && got["authenticity_token"] != "" {
			return got["authenticity_token"]
		}
	}
	u.tb.Fatalf("%s has no form to %s %s", u.where, method, action)
	return ""
}

// find is the first submatch of re on the last page.
func (u *uplUser) find(re *regexp.Regexp) string {
	u.tb.Helper()
	m := re.FindStringSubmatch(u.page)
	if m == nil {
		u.tb.Fatalf("%s has no %s", u.where, re)
	}
	return html.UnescapeString(m[1])
}

// uplField is a part of a multipart body: a file if filename is set.
type uplField struct{ name, value, filename, ctype string }

// uplFormData is a multipart/form-data body as Chromium writes one.
func uplFormData(fields ...uplField) (body, ctype string) {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	r := uplRandom(16)
	for i := range r {
		r[i] = alnum[int(r[i])%len(alnum)]
	}
	boundary := "----WebKitFormBoundary" + string(r)
	var b strings.Builder
	for _, f := range fields {
		if b.WriteString("--" + boundary + "\r\n"); f.filename == "" {
			fmt.Fprintf(&b, "Content-Disposition: form-data; name=%q\r\n\r\n", f.name)
		} else {
			fmt.Fprintf(&b, "Content-Disposition: form-data; name=%q; filename=%q\r\nContent-Type: %s\r\n\r\n", f.name, f.filename, f.ctype)
		}
		b.WriteString(f.value + "\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.String(), "multipart/form-data; boundary=" + boundary
}

// post submits a form as the browser does (with Origin), urlencoded or
// multipart, and returns the Location of its answer, which must be want.
func (u *uplUser) post(action, body, ctype string, want int) string {
	u.tb.Helper()
	ans := u.do(http.MethodPost, action, body, want, "Accept", uplNavigate, "Origin", u.base, "Content-Type", ctype)
	return ans.Header.Get("Location")
}

func (u *uplUser) signIn(user string) string {
	u.tb.Helper()
	v := url.Values{"authenticity_token": {u.token("post", "/session")}, "email_address": {user + "@example.test"}, "password": {"pw-" + user},
		"commit": {"Sign in"}}
	return u.post("/session", v.Encode(), "application/x-www-form-urlencoded", http.StatusFound)
}

// uplBlobJSON is the part of a direct upload's answer a client reads.
type uplBlobJSON struct {
	ID           int    `json:"id"`
	Key          string `json:"key"`
	SignedID     string `json:"signed_id"`
	DirectUpload struct {
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	} `json:"direct_upload"`
}

// directUpload is activestorage's BlobRecord: the blob of a text file
// from the last page's direct upload field.
func (u *uplUser) directUpload(name, content string) uplBlobJSON {
	u.tb.Helper()
	sum := md5.Sum([]byte(content))
	req, _ := json.Marshal(map[string]any{"blob": map[string]any{"filename": name, "content_type": "text/plain", "byte_size": len(content),
		"checksum": base64.StdEncoding.EncodeToString(sum[:])}})
	ans := u.do(http.MethodPost, u.find(uplDirectRE), string(req), http.StatusOK, "Content-Type", "application/json", "Accept", "application/json",
		"X-Requested-With", "XMLHttpRequest", "X-CSRF-Token", u.find(uplMetaRE), "Origin", u.base)
	var b uplBlobJSON
	if err := json.Unmarshal(ans.Body, &b); err != nil || b.SignedID == "" || b.DirectUpload.URL == "" {
		u.tb.Fatalf("direct upload: %v: %.400s", err, ans.Body)
	}
	return b
}

// put is activestorage's BlobUpload: the bytes PUT to the presigned URL.
func (u *uplUser) put(b uplBlobJSON, content string, want int) Answer {
	u.tb.Helper()
	var h []string
	for k, v := range b.DirectUpload.Headers {
		h = append(h, k, v)
	}
	return u.do(http.MethodPut, b.DirectUpload.URL, content, want, append(h, "Origin", u.base)...)
}

// attach submits the upload form with the signed id, as activestorage
// leaves it: the token, the hidden upload[file], the button.
func (u *uplUser) attach(sid string, want int) string {
	u.tb.Helper()
	body, ct := uplFormData(uplField{name: "authenticity_token", value: u.token("post", "/uploads")}, uplField{name: "upload[file]", value: sid},
		uplField{name: "commit", value: "Create Upload"})
	return u.post("/uploads", body, ct, want)
}

// upload uploads a text file from the uploads page and opens its page.
func (u *uplUser) upload(name, content string) {
	u.tb.Helper()
	b := u.directUpload(name, content)
	if len(b.Key) != 28 || !strings.HasPrefix(b.SignedID, "eyJfcmFpbHMi") {
		u.tb.Fatalf("blob key %q, signed id %q", b.Key, b.SignedID)
	}
	u.put(b, content, http.StatusOK)
	loc := u.attach(b.SignedID, http.StatusFound)
	if m := uplShowRE.FindStringSubmatch(strings.TrimPrefix(loc, u.base)); m == nil || m[1] != "uploads" {
		u.tb.Fatalf("uploaded, sent to %q", loc)
	}
	u.get(loc)
}

// download fetches the upload page's download link as fetch() does,
// following the redirect to the store, and checks the bytes.
func (u *uplUser) download(content string) {
	u.tb.Helper()
	loc := u.do(http.MethodGet, u.find(uplDownloadRE), "", http.StatusFound, "Accept", "*/*").Header.Get("Location")
	if !strings.HasPrefix(loc, u.base+"/store/"+uplBucket+"/") {
		u.tb.Fatalf("download sent to %q", loc)
	}
	if got := u.do(http.MethodGet, loc, "", http.StatusOK, "Accept", "*/*").Body; string(got) != content {
		u.tb.Fatalf("downloaded %q, want %q", got, content)
	}
}

// importCSV posts the import form with a CSV file.
func (u *uplUser) importCSV(csvText string, want int) string {
	u.tb.Helper()
	body, ct := uplFormData(uplField{name: "authenticity_token", value: u.token("post", "/imports")}, uplField{name: "import[kind]", value: "contacts"},
		uplField{name: "import[file]", value: csvText, filename: "contacts.csv", ctype: "text/csv"}, uplField{name: "commit", value: "Create Import"})
	return u.post("/imports", body, ct, want)
}

func uplCSV(user string) string {
	return "name,email\n" + user + "," + user + "@example.test\nAda Lovelace,ada@example.test\nAlan Turing,alan@example.test\n"
}

func (u *uplUser) visit(user string) {
	u.tb.Helper()
	must := func(ok bool, format string, args ...any) {
		if u.tb.Helper(); !ok {
			u.tb.Fatalf(format, args...)
		}
	}
	start := "/uploads?u=" + url.QueryEscape(user)
	loc := u.do(http.MethodGet, start, "", http.StatusFound, "Accept", uplNavigate).Header.Get("Location")
	must(loc == u.base+"/session/new", "anonymous %s sent to %q", start, loc)
	u.get("/session/new")
	loc = u.signIn(user)
	must(loc == u.base+start, "signed in, sent to %q", loc)
	u.get(loc)
	for i, name := range []string{"a.txt", "b.txt"} {
		content := "Hello from " + user + ": " + name + "\n"
		u.upload(name, content)
		must(strings.Contains(u.page, `<h1 id="filename">`+name+`</h1>`), "%s does not show %s", u.where, name)
		u.download(content)
		u.get([]string{"/uploads", "/imports/new"}[i])
	}
	loc = u.importCSV(uplCSV(user), http.StatusFound)
	m := uplShowRE.FindStringSubmatch(strings.TrimPrefix(loc, u.base))
	must(m != nil && m[1] == "imports", "imported, sent to %q", loc)
	u.get(loc)
	must(strings.Contains(u.page, `<span id="rows">3</span>`) && strings.Contains(u.page, "<td>"+html.EscapeString(user)+"</td>"), "import page: %.500s", u.page)
	v := url.Values{"_method": {"delete"}, "authenticity_token": {u.token("delete", "/session")}}
	loc = u.post("/session", v.Encode(), "application/x-www-form-urlencoded", http.StatusSeeOther)
	must(loc == u.base+"/session/new", "signed out, sent to %q", loc)
	u.get("/session/new")
}
