package apptest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// AspNet is a backend that answers, on the wire, as an ASP.NET Core 8
// Razor Pages app with ASP.NET Core Identity (the default Identity UI) and
// antiforgery does: a todo list. The conventions below were read in
// dotnet/aspnetcore's own source (src/Antiforgery, src/DataProtection,
// src/Shared/ChunkingCookieManager, src/Security/Authentication,
// src/Mvc/Mvc.ViewFeatures, src/Identity/UI/.../V5/Account/Login.cshtml).
//
// Data Protection: every protected payload (cookie tokens, request tokens,
// the authentication ticket, TempData) is the key ring's format, magic
// header 09 F0 C9 F0, the key id, a key modifier, an IV, AES-256-CBC and an
// HMAC-SHA256 with subkeys derived by SP800-108 CTR HMAC-SHA512 from the
// master key, the purposes (the application discriminator, a content root
// picked at start, then the component's) as the label: base64url, so
// "CfDJ8…".
//
// Antiforgery: the cookie .AspNetCore.Antiforgery.<11 chars> (the base64url
// of 8 bytes of SHA-256 of the discriminator; path=/; samesite=strict;
// httponly, with X-Frame-Options: SAMEORIGIN when it is set) holds the cookie
// token: version 1, a 16-byte security token. Each answer that renders a form
// serializes one request token (the same security token, and the SHA-256
// claim uid of the user's nameidentifier claim when logged in), so a
// different string each render, with Cache-Control: no-cache, no-store and
// Pragma: no-cache; every form has it in a hidden __RequestVerificationToken
// and the list page's script in `const antiforgery = "…"`. Every POST (any
// method but GET, HEAD, OPTIONS, TRACE) is checked, the RequestVerificationToken
// header first, else the form field: a missing, undecryptable, swapped or
// mismatched token, or one made for another identity (a token made before
// login is refused after it), is a 400 with an empty body.
//
// Identity: an anonymous request to a Todos page is a 302 to the absolute
// http://host/Identity/Account/Login?ReturnUrl=<the path and query,
// UrlEncoder-escaped> (a 401 with Location to X-Requested-With:
// XMLHttpRequest). The login form (id="account", no action: it posts to its
// own URL) has Input.Email, Input.Password and the Input.RememberMe checkbox
// with its hidden "false" at the form's end; the user NAME logs in with
// NAME@example.test and pw-NAME (made on first login), an accepted login is
// a 302 LocalRedirect to the ReturnUrl as given (else "/"), a refused one a
// 200 re-render with "Invalid login attempt.". The ticket (TicketSerializer
// v5: nameidentifier, name, email, security stamp, the app's permission
// claims, amr=pwd; .persistent, .issued, .expires, 14 days) is long enough
// that the ChunkingCookieManager (4050 characters a cookie) writes
// .AspNetCore.Identity.Application=chunks-2 and ...C1, ...C2 (samesite=lax;
// httponly; an expires when RememberMe). Any ticket that decrypts and has
// not expired is good: nothing is kept on the server. The login page deletes
// the Identity.External cookie; logout (POST
// /Identity/Account/Logout?returnUrl=%2F from the layout's #logoutForm)
// deletes the application cookie and its chunks, Identity.External and
// Identity.TwoFactorUserId, and redirects 302 to the returnUrl.
//
// TempData: .AspNetCore.Mvc.CookieTempDataProvider (samesite=lax; httponly)
// holds {"StatusMessage":"…"}, protected; a page that loads TempData and
// leaves it empty deletes the cookie (as the list page always does).
//
// The app: /Todos lists the user's todos in a table; each row has an edit
// link /Todos/Edit/7, a Toggle button, and a Delete form to
// /Todos?id=7&handler=Delete with its hidden token. /Todos/Create posts
// Todo.Title and answers 302 to /Todos; /Todos/Edit/7 posts Todo.Id,
// Todo.RowVersion (base64 of a SQL Server rowversion, 8 bytes, a counter
// shared by all rows that every save moves on), Todo.Title and Todo.Done: a
// stale RowVersion is a 409 re-render with EF's concurrency message and the
// current values. POST /Todos?handler=Toggle&id=7 with the
// RequestVerificationToken header answers {"id":7,"done":true}. Todos have
// small auto-increment ids shared by all users; another user's is a 404 with
// an empty body. Every page runs a script that makes a browser do what
// AspNetClient does, from /Todos?u=NAME, ending on / with #root "done".
//
// Counts: "sessions" (logins), "login refused", "login redirects"
// (anonymous requests sent to log in), "401 anonymous" (the same for XHR),
// "logouts", "todos created", "todos saved" (edited), "todos toggled",
// "todos deleted", "antiforgery refused", "ticket refused" (an identity
// cookie that does not decrypt, is missing a chunk or has expired),
// "concurrency refused" (a stale RowVersion), "invalid" (a blank title,
// re-rendered), "404 foreign" (another user's todo), "404 missing", "404
// mismatch" (Todo.Id is not the route's id), "404 route", "500 not local"
// (a ReturnUrl that is not local). All but sessions, logouts and the todos
// counts are refusals.
type AspNet struct {
	URL    string
	Counts Counts

	mu         sync.Mutex
	disc       string   // DataProtectionOptions.ApplicationDiscriminator: the content root
	keyID      [16]byte // the key ring's default key
	kdk        []byte   // its master key
	ctxHeader  []byte   // the CBC encryptor's context header
	afName     string   // the antiforgery cookie's name
	users      map[string]*aspnetUser
	byID       map[string]*aspnetUser
	todos      map[int]*aspnetTodo
	lastTodo   int
	rowVersion uint64
	reasons    []string // why antiforgery refused, in order
}

type (
	aspnetUser struct {
		name, id, email, stamp string
	}
	aspnetTodo struct {
		owner   string // the user's id
		title   string
		done    bool
		version uint64
	}
	// aspnetToken is an AntiforgeryToken.
	aspnetToken struct {
		cookie   bool
		sec      []byte // the 16-byte security token
		claimUID []byte // 32 bytes, or nil
		username string
		extra    string
	}
)

const (
	aspnetMagic      = 0x09F0C9F0
	aspnetAppCookie  = ".AspNetCore.Identity.Application"
	aspnetTempCookie = ".AspNetCore.Mvc.CookieTempDataProvider"
	aspnetAFField    = "__RequestVerificationToken"
	aspnetAFHeader   = "RequestVerificationToken"
	aspnetChunkSize  = 4050
	aspnetScheme     = "Identity.Application"
	aspnetClaims     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
	aspnetStampClaim = "AspNet.Identity.SecurityStamp"
	aspnetPermClaim  = "http://schemas.todoapp.example.test/claims/permission"
	aspnetIssuer     = "LOCAL AUTHORITY"
	aspnetLoginPath  = "/Identity/Account/Login"
	aspnetLogoutPath = "/Identity/Account/Logout"
	aspnetExpire     = 14 * 24 * time.Hour
	aspnetHTMLType   = "text/html; charset=utf-8"
	aspnetEpoch      = "Thu, 01 Jan 1970 00:00:00 GMT"
	aspnetConcurrent = "The record you attempted to edit was modified by another user after you got the original value. " +
		"The edit operation was canceled and the current values in the database have been displayed. " +
		"If you still want to edit this record, click the Save button again."
)

var (
	aspnetAFPurpose     = []string{"Microsoft.AspNetCore.Antiforgery.AntiforgeryToken.v1"}                                           //nolint:gochecknoglobals // constant
	aspnetTicketPurpose = []string{"Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationMiddleware", aspnetScheme, "v2"} //nolint:gochecknoglobals // constant
	aspnetTempPurpose   = []string{"Microsoft.AspNetCore.Mvc.CookieTempDataProviderToken.v1"}                                        //nolint:gochecknoglobals // constant
)

// NewAspNet starts an AspNet on loopback until the test ends.
func NewAspNet(tb testing.TB) *AspNet {
	a := newAspNetKeyRing("todoapp")
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// newAspNetKeyRing is an AspNet not yet serving: a Data Protection key ring
// of its own, for an app deployed under /srv/<app>-<random>/ (its content
// root, the discriminator), and its antiforgery cookie's name. Another
// ASP.NET Core app of this package (SignalR) protects its cookies and
// tokens with one.
func newAspNetKeyRing(app string) *AspNet {
	a := &AspNet{users: map[string]*aspnetUser{}, byID: map[string]*aspnetUser{}, todos: map[int]*aspnetTodo{},
		disc: "/srv/" + app + "-" + hex.EncodeToString(aspnetRandom(3)) + "/", kdk: aspnetRandom(64)}
	copy(a.keyID[:], aspnetRandom(16))
	a.keyID[7], a.keyID[8] = a.keyID[7]&0x0f|0x40, a.keyID[8]&0x3f|0x80 // a version 4 Guid, as ToByteArray lays it out
	sum := sha256.Sum256([]byte(a.disc))
	a.afName = ".AspNetCore.Antiforgery." + base64.RawURLEncoding.EncodeToString(sum[:8])
	a.rowVersion = 2000 + uint64(aspnetRandom(1)[0])
	// The context header: algorithm ids and sizes, then E("") and MAC("")
	// under keys derived from an empty key.
	h := []byte{0, 0}
	for _, n := range []uint32{32, 16, 32, 32} {
		h = binary.BigEndian.AppendUint32(h, n)
	}
	tmp := aspnetKDF(nil, nil, nil, 64)
	block, _ := aes.NewCipher(tmp[:32])
	e := bytes.Repeat([]byte{16}, 16)
	cipher.NewCBCEncrypter(block, make([]byte, 16)).CryptBlocks(e, e)
	m := hmac.New(sha256.New, tmp[32:])
	a.ctxHeader = m.Sum(append(h, e...))
	return a
}

// Users returns the names of the users who logged in, sorted.
func (a *AspNet) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

// AntiforgeryCookie is the antiforgery cookie's name.
func (a *AspNet) AntiforgeryCookie() string { return a.afName }

func aspnetRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func aspnetGUID() string {
	h := hex.EncodeToString(aspnetRandom(16))
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-" + string("89ab"[h[16]%4]) + h[17:20] + "-" + h[20:]
}

// aspnetKDF is SP800-108 in counter mode with HMAC-SHA512: [i] || label ||
// 0x00 || context || [L], as Data Protection derives its subkeys.
func aspnetKDF(kdk, label, context []byte, n int) []byte {
	in := binary.BigEndian.AppendUint32(nil, 0)
	in = append(append(append(in, label...), 0), context...)
	in = binary.BigEndian.AppendUint32(in, uint32(n*8))
	var out []byte
	for i := uint32(1); len(out) < n; i++ {
		binary.BigEndian.PutUint32(in, i)
		m := hmac.New(sha512.New, kdk)
		m.Write(in)
		out = m.Sum(out)
	}
	return out[:n]
}

// aspnetStr appends a string as BinaryWriter.Write(string) does: its UTF-8
// length 7 bits a byte, then the bytes.
func aspnetStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// aad is the additional authenticated data: the magic header, the key id,
// the purpose count and the purposes, the discriminator first.
func (a *AspNet) aad(purposes []string) []byte {
	b := binary.BigEndian.AppendUint32(nil, aspnetMagic)
	b = append(b, a.keyID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(purposes)+1))
	for _, p := range append([]string{a.disc}, purposes...) {
		b = aspnetStr(b, p)
	}
	return b
}

// protect is IDataProtector.Protect, base64url encoded.
func (a *AspNet) protect(plain []byte, purposes []string) string {
	aad, km, iv := a.aad(purposes), aspnetRandom(16), aspnetRandom(16)
	keys := aspnetKDF(a.kdk, aad, append(slices.Clip(a.ctxHeader), km...), 64)
	block, _ := aes.NewCipher(keys[:32])
	pad := 16 - len(plain)%16
	ct := append(slices.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	out := append(append(append(slices.Clone(aad[:20]), km...), iv...), ct...)
	m := hmac.New(sha256.New, keys[32:])
	m.Write(iv)
	m.Write(ct)
	return base64.RawURLEncoding.EncodeToString(m.Sum(out))
}

// unprotect undoes protect; false for anything that is not a payload of
// this key ring and these purposes.
func (a *AspNet) unprotect(s string, purposes []string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) < 20+16+16+16+32 || (len(b)-20-32-32)%16 != 0 ||
		binary.BigEndian.Uint32(b) != aspnetMagic || !bytes.Equal(b[4:20], a.keyID[:]) {
		return nil, false
	}
	aad := a.aad(purposes)
	km, iv, ct, mac := b[20:36], b[36:52], b[52:len(b)-32], b[len(b)-32:]
	keys := aspnetKDF(a.kdk, aad, append(slices.Clip(a.ctxHeader), km...), 64)
	m := hmac.New(sha256.New, keys[32:])
	m.Write(iv)
	m.Write(ct)
	if !hmac.Equal(m.Sum(nil), mac) {
		return nil, false
	}
	block, _ := aes.NewCipher(keys[:32])
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > 16 {
		return nil, false
	}
	return plain[:len(plain)-pad], true
}

// encodeToken is DefaultAntiforgeryTokenSerializer.Serialize.
func (a *AspNet) encodeToken(t aspnetToken) string {
	b := append([]byte{1}, t.sec...)
	if t.cookie {
		b = append(b, 1)
	} else {
		b = append(b, 0)
		if t.claimUID != nil {
			b = append(append(b, 1), t.claimUID...)
		} else {
			b = aspnetStr(append(b, 0), t.username)
		}
		b = aspnetStr(b, t.extra)
	}
	return a.protect(b, aspnetAFPurpose)
}

// decodeToken is Deserialize: the whole payload must be read.
func (a *AspNet) decodeToken(s string) (aspnetToken, bool) {
	var t aspnetToken
	b, ok := a.unprotect(s, aspnetAFPurpose)
	r := &aspnetReader{b: b}
	if !ok || r.byte() != 1 {
		return t, false
	}
	t.sec, t.cookie = r.bytes(16), r.bool()
	if !t.cookie {
		if r.bool() {
			t.claimUID = r.bytes(32)
		} else {
			t.username = r.str()
		}
		t.extra = r.str()
	}
	return t, r.err == nil && len(r.b) == 0
}

// claimUID is DefaultClaimUidExtractor's: SHA-256 of the nameidentifier
// claim's type, value and issuer.
func (u *aspnetUser) claimUID() []byte {
	sum := sha256.Sum256(aspnetStr(aspnetStr(aspnetStr(nil, aspnetClaims+"nameidentifier"), u.id), aspnetIssuer))
	return sum[:]
}

// aspnetReader reads what BinaryWriter wrote.
type aspnetReader struct {
	b   []byte
	err error
}

func (r *aspnetReader) bytes(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *aspnetReader) byte() byte {
	if v := r.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *aspnetReader) bool() bool { return r.byte() != 0 }

func (r *aspnetReader) int32() int {
	if v := r.bytes(4); v != nil {
		return int(int32(binary.LittleEndian.Uint32(v)))
	}
	return 0
}

func (r *aspnetReader) str() string {
	n, k := binary.Uvarint(r.b)
	if r.err == nil && k <= 0 {
		r.err = errors.New("bad length")
	}
	if r.err != nil {
		return ""
	}
	r.b = r.b[k:]
	return string(r.bytes(int(n)))
}

// aspnetClaim is a claim of the ticket: type and value; the value type,
// issuer and original issuer are the defaults.
type aspnetClaim struct{ typ, value string }

// claims is what UserClaimsPrincipalFactory and SignInWithClaimsAsync put in
// the identity: id, name, email, security stamp, the user's claims (the
// app's permissions, which make the ticket long) and amr.
func (u *aspnetUser) claims() []aspnetClaim {
	c := []aspnetClaim{{aspnetClaims + "nameidentifier", u.id}, {aspnetClaims + "name", u.email},
		{aspnetClaims + "emailaddress", u.email}, {aspnetStampClaim, u.stamp}}
	for _, res := range []string{"Todos", "TodoLists", "Tags", "Comments", "Attachments", "Reminders", "Shares", "Reports"} {
		for _, act := range []string{"Read", "Create", "Update", "Delete", "Export"} {
			c = append(c, aspnetClaim{aspnetPermClaim, "TodoApp.Permissions." + res + "." + act})
		}
	}
	return append(c, aspnetClaim{"amr", "pwd"})
}

// ticket is TicketSerializer's format 5, protected for the cookie.
func (a *AspNet) ticket(u *aspnetUser, persistent bool, issued time.Time) string {
	return a.ticketOf(u.claims(), persistent, issued)
}

// ticketOf is ticket for an identity of these claims.
func (a *AspNet) ticketOf(cl []aspnetClaim, persistent bool, issued time.Time) string {
	le := func(b []byte, n int) []byte { return binary.LittleEndian.AppendUint32(b, uint32(n)) }
	b := aspnetStr(le(nil, 5), aspnetScheme)
	b = aspnetStr(le(b, 1), aspnetScheme)
	b = aspnetStr(aspnetStr(b, "\x00"), "\x00") // the default name and role claim types
	b = le(b, len(cl))
	for _, c := range cl {
		typ := c.typ
		if typ == aspnetClaims+"name" {
			typ = "\x00"
		}
		b = aspnetStr(aspnetStr(b, typ), c.value)
		b = aspnetStr(aspnetStr(aspnetStr(b, "\x00"), "\x00"), "\x00") // string, LOCAL AUTHORITY, the same
		b = le(b, 0)
	}
	b = append(b, 0, 0) // no bootstrap context, no actor
	props := [][2]string{{".issued", issued.Format(http.TimeFormat)}, {".expires", issued.Add(aspnetExpire).Format(http.TimeFormat)}}
	if persistent {
		props = append([][2]string{{".persistent", ""}}, props...)
	}
	b = le(le(b, 1), len(props))
	for _, p := range props {
		b = aspnetStr(aspnetStr(b, p[0]), p[1])
	}
	return a.protect(b, aspnetTicketPurpose)
}

// readTicket returns the ticket's user id and expiry.
func (a *AspNet) readTicket(s string) (id string, expires time.Time, ok bool) {
	b, ok := a.unprotect(s, aspnetTicketPurpose)
	r := &aspnetReader{b: b}
	if !ok || r.int32() != 5 || r.str() != aspnetScheme {
		return "", expires, false
	}
	for range r.int32() {
		r.str()
		r.str()
		r.str()
		for range r.int32() {
			typ, value := r.str(), r.str()
			r.str()
			r.str()
			r.str()
			for range r.int32() {
				r.str()
				r.str()
			}
			if typ == aspnetClaims+"nameidentifier" && id == "" {
				id = value
			}
		}
		if r.bool() {
			r.str()
		}
		if r.bool() { // an actor: not written here
			return "", expires, false
		}
	}
	if r.int32() != 1 {
		return "", expires, false
	}
	for range r.int32() {
		if k, v := r.str(), r.str(); k == ".expires" {
			expires, _ = time.Parse(http.TimeFormat, v)
		}
	}
	return id, expires, r.err == nil && id != "" && !expires.IsZero()
}

// aspnetSetCookie is SetCookieHeaderValue.ToString.
func aspnetSetCookie(name, value, expires, sameSite string) string {
	s := name + "=" + value
	if expires != "" {
		s += "; expires=" + expires
	}
	return s + "; path=/; samesite=" + sameSite + "; httponly"
}

// aspnetURLEncode is UrlEncoder.Default: all but the unreserved escaped.
func aspnetURLEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// aspnetHTML is HtmlEncoder.Default, as Razor writes text and attributes.
func aspnetHTML(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\'' || r == '+' || r >= 0x7f || r < 0x20 && r != '\n':
			fmt.Fprintf(&b, "&#x%X;", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// aspnetJSON is System.Text.Json's string with the default encoder.
func aspnetJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r >= 0x7f || strings.ContainsRune("\"'<>&+`", r):
			if r > 0xffff {
				fmt.Fprintf(&b, `\u%04X\u%04X`, 0xd800+(r-0x10000)>>10, 0xdc00+(r-0x10000)&0x3ff)
			} else {
				fmt.Fprintf(&b, `\u%04X`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String() + `"`
}

// aspnetCall is one request on its way through the app.
type aspnetCall struct {
	a       *AspNet
	w       http.ResponseWriter
	r       *http.Request
	user    *aspnetUser // the authenticated user
	cookies []string    // Set-Cookie, in order
	afSec   []byte      // the cookie token's security token, once read or made
	token   string      // this request's serialized request token
	temp    map[string]string
	loaded  bool // TempData
}

func (a *AspNet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := &aspnetCall{a: a, w: w, r: r}
	path := strings.ToLower(strings.TrimSuffix(r.URL.Path, "/"))
	if path == "/favicon.ico" { // wwwroot/favicon.ico, served by the static files middleware
		w.Header().Set("Content-Type", "image/x-icon")
		http.ServeContent(w, r, "favicon.ico", time.Time{}, strings.NewReader(""))
		return
	}
	c.authenticate()
	var page func()
	authorize := true
	switch {
	case path == "" || path == "/index":
		page, authorize = c.home, false
	case path == strings.ToLower(aspnetLoginPath):
		page, authorize = c.login, false
	case path == strings.ToLower(aspnetLogoutPath):
		page, authorize = c.logout, false
	case path == "/todos" || path == "/todos/index":
		page = c.list
	case path == "/todos/create":
		page = c.create
	case strings.HasPrefix(path, "/todos/edit/"):
		id, err := strconv.Atoi(path[len("/todos/edit/"):])
		if err == nil && id >= 0 {
			page = func() { c.edit(id) }
		}
	}
	if page == nil {
		c.fail(http.StatusNotFound, "404 route")
		return
	}
	if authorize && c.user == nil {
		c.challenge()
		return
	}
	if m := r.Method; m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions && m != http.MethodTrace {
		if reason := c.antiforgery(); reason != "" {
			a.reasons = append(a.reasons, reason)
			c.fail(http.StatusBadRequest, "antiforgery refused")
			return
		}
	}
	page()
}

// aspnetQuery is a query value as model binding finds it: the name in any
// case.
func aspnetQuery(q url.Values, name string) (string, bool) {
	for k, v := range q {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// post tells whether the request is a POST, as handlers are chosen.
func (c *aspnetCall) post() bool { return c.r.Method == http.MethodPost }

// chunked is ChunkingCookieManager.GetRequestCookie: the chunks joined, or
// the "chunks-N" value itself when one is missing.
func (c *aspnetCall) chunked(name string) string {
	ck, err := c.r.Cookie(name)
	if err != nil {
		return ""
	}
	n, err := strconv.Atoi(strings.TrimPrefix(ck.Value, "chunks-"))
	if !strings.HasPrefix(ck.Value, "chunks-") || err != nil || n <= 0 {
		return ck.Value
	}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		part, err := c.r.Cookie(name + "C" + strconv.Itoa(i))
		if err != nil || part.Value == "" {
			return ck.Value
		}
		b.WriteString(part.Value)
	}
	return b.String()
}

// appendChunked is ChunkingCookieManager.AppendResponseCookie.
func (c *aspnetCall) appendChunked(name, value, expires, sameSite string) {
	tmpl := len(aspnetSetCookie(name, "", expires, sameSite))
	if aspnetChunkSize > tmpl+len(value) {
		c.cookies = append(c.cookies, aspnetSetCookie(name, value, expires, sameSite))
		return
	}
	per := aspnetChunkSize - tmpl - 3
	n := (len(value) + per - 1) / per
	c.cookies = append(c.cookies, aspnetSetCookie(name, "chunks-"+strconv.Itoa(n), expires, sameSite))
	for i := 1; len(value) > 0; i++ {
		k := min(per, len(value))
		c.cookies = append(c.cookies, aspnetSetCookie(name+"C"+strconv.Itoa(i), value[:k], expires, sameSite))
		value = value[k:]
	}
}

// deleteChunked is ChunkingCookieManager.DeleteCookie: the cookie, and the
// chunks the request had.
func (c *aspnetCall) deleteChunked(name string) {
	c.cookies = slices.DeleteFunc(c.cookies, func(s string) bool {
		k, _, _ := strings.Cut(s, "=")
		n := strings.TrimPrefix(k, name+"C")
		return k == name || len(n) < len(k) && n != "" && strings.Trim(n, "0123456789") == ""
	})
	c.cookies = append(c.cookies, aspnetSetCookie(name, "", aspnetEpoch, "lax"))
	if ck, err := c.r.Cookie(name); err == nil && strings.HasPrefix(ck.Value, "chunks-") {
		n, _ := strconv.Atoi(strings.TrimPrefix(ck.Value, "chunks-"))
		for i := 1; i <= n; i++ {
			c.cookies = append(c.cookies, aspnetSetCookie(name+"C"+strconv.Itoa(i), "", aspnetEpoch, "lax"))
		}
	}
}

// authenticate is the cookie handler's AuthenticateAsync.
func (c *aspnetCall) authenticate() {
	v := c.chunked(aspnetAppCookie)
	if v == "" {
		return
	}
	id, exp, ok := c.a.readTicket(v)
	if u := c.a.byID[id]; ok && exp.After(time.Now()) && u != nil {
		c.user = u
		return
	}
	c.a.Counts.Add("ticket refused", 1)
}

// challenge is the cookie handler's ChallengeAsync.
func (c *aspnetCall) challenge() {
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	loc := scheme + "://" + c.r.Host + aspnetLoginPath + "?ReturnUrl=" + aspnetURLEncode(c.r.URL.EscapedPath()+map[bool]string{true: "?" + c.r.URL.RawQuery}[c.r.URL.RawQuery != ""])
	c.w.Header().Set("Location", loc)
	if c.r.Header.Get("X-Requested-With") == "XMLHttpRequest" || c.r.URL.Query().Get("X-Requested-With") == "XMLHttpRequest" {
		c.a.Counts.Add("401 anonymous", 1)
		c.send(http.StatusUnauthorized, "", "")
		return
	}
	c.a.Counts.Add("login redirects", 1)
	c.send(http.StatusFound, "", "")
}

// cookieToken is the cookie token's security token, read from the request
// or made and stored anew.
func (c *aspnetCall) cookieToken() []byte {
	if c.afSec == nil {
		if ck, err := c.r.Cookie(c.a.afName); err == nil && ck.Value != "" {
			if t, ok := c.a.decodeToken(ck.Value); ok && t.cookie {
				c.afSec = t.sec
			}
		}
		if c.afSec == nil {
			c.afSec = aspnetRandom(16)
			c.cookies = append(c.cookies, aspnetSetCookie(c.a.afName, c.a.encodeToken(aspnetToken{cookie: true, sec: c.afSec}), "", "strict"))
			c.w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		}
	}
	return c.afSec
}

// requestToken is GetAndStoreTokens(HttpContext).RequestToken: one a
// request, bound to the cookie token and the current user.
func (c *aspnetCall) requestToken() string {
	if c.token == "" {
		t := aspnetToken{sec: c.cookieToken()}
		if c.user != nil {
			t.claimUID = c.user.claimUID()
		}
		c.token = c.a.encodeToken(t)
		c.w.Header().Set("Cache-Control", "no-cache, no-store")
		c.w.Header().Set("Pragma", "no-cache")
	}
	return c.token
}

// form is the request's form, if it has a form content type.
func (c *aspnetCall) form() url.Values {
	ct, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		_ = c.r.ParseForm()
	case "multipart/form-data":
		_ = c.r.ParseMultipartForm(1 << 20)
	default:
		return nil
	}
	return c.r.PostForm
}

// antiforgery is IAntiforgery.ValidateRequestAsync: why the request is
// refused, or "".
func (c *aspnetCall) antiforgery() string {
	var cookie string
	if ck, err := c.r.Cookie(c.a.afName); err == nil {
		cookie = ck.Value
	}
	vals := c.r.Header.Values(aspnetAFHeader)
	if len(vals) == 0 {
		vals = c.form()[aspnetAFField]
	}
	req := strings.Join(vals, ",")
	if cookie == "" {
		return fmt.Sprintf("The required antiforgery cookie %q is not present.", c.a.afName)
	}
	if req == "" {
		return `The required antiforgery request token was not provided in either form field "__RequestVerificationToken" or header value "RequestVerificationToken".`
	}
	ct, ok1 := c.a.decodeToken(cookie)
	rt, ok2 := c.a.decodeToken(req)
	var cur []byte
	if c.user != nil {
		cur = c.user.claimUID()
	}
	switch {
	case !ok1 || !ok2:
		return "The antiforgery token could not be decrypted."
	case !ct.cookie || rt.cookie:
		return "Validation of the provided antiforgery token failed. The cookie token and the request token were swapped."
	case !hmac.Equal(ct.sec, rt.sec):
		return "The antiforgery cookie token and request token do not match."
	case c.user == nil && (rt.claimUID != nil || rt.username != ""):
		return "The provided antiforgery token was meant for a user that is not authenticated."
	case rt.username != "":
		return fmt.Sprintf("The provided antiforgery token was meant for user %q, but the current user is %q.", rt.username, "")
	case !bytes.Equal(rt.claimUID, cur):
		return "The provided antiforgery token was meant for a different claims-based user than the current user."
	}
	return ""
}

// loadTemp is CookieTempDataProvider.LoadTempData.
func (c *aspnetCall) loadTemp() map[string]string {
	if !c.loaded {
		c.loaded, c.temp = true, map[string]string{}
		if _, err := c.r.Cookie(aspnetTempCookie); err == nil {
			plain, ok := c.a.unprotect(c.chunked(aspnetTempCookie), aspnetTempPurpose)
			if !ok || json.Unmarshal(plain, &c.temp) != nil {
				c.temp = map[string]string{}
				c.deleteChunked(aspnetTempCookie)
			}
		}
	}
	return c.temp
}

// saveTemp is SaveTempData: the values protected in the cookie, or the
// cookie deleted when there are none.
func (c *aspnetCall) saveTemp(vals map[string]string) {
	if len(vals) == 0 {
		c.deleteChunked(aspnetTempCookie)
		return
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(vals)) {
		fmt.Fprintf(&b, "%s%s:%s", map[bool]string{true: ","}[i > 0], aspnetJSON(k), aspnetJSON(vals[k]))
	}
	c.appendChunked(aspnetTempCookie, c.a.protect([]byte("{"+b.String()+"}"), aspnetTempPurpose), "", "lax")
}

// send writes the answer as Kestrel does.
func (c *aspnetCall) send(status int, ctype, body string) {
	h := c.w.Header()
	for _, v := range c.cookies {
		h.Add("Set-Cookie", v)
	}
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	h.Set("Server", "Kestrel")
	if body == "" {
		h.Set("Content-Length", "0")
	}
	c.w.WriteHeader(status)
	if c.r.Method != http.MethodHead {
		_, _ = io.WriteString(c.w, body)
	}
}

// redirect is a RedirectResult or LocalRedirectResult: 302, the Location as
// given, no body.
func (c *aspnetCall) redirect(to string) {
	c.w.Header().Set("Location", to)
	c.send(http.StatusFound, "", "")
}

// fail answers a status with an empty body, as NotFound(), BadRequest() and
// the antiforgery filter do, and counts it.
func (c *aspnetCall) fail(status int, count string) {
	c.a.Counts.Add(count, 1)
	c.send(status, "", "")
}

// hidden is the form tag helper's antiforgery input.
func (c *aspnetCall) hidden() string {
	return `<input name="` + aspnetAFField + `" type="hidden" value="` + c.requestToken() + `" />`
}

// render renders a page in the layout, with _LoginPartial.
func (c *aspnetCall) render(status int, title, main, scripts string) {
	nav := `<ul class="navbar-nav">
                    <li class="nav-item"><a class="nav-link text-dark" id="register" href="/Identity/Account/Register">Register</a></li>
                    <li class="nav-item"><a class="nav-link text-dark" id="login" href="/Identity/Account/Login">Login</a></li>
                </ul>`
	if c.user != nil {
		nav = `<ul class="navbar-nav">
                    <li class="nav-item"><a id="manage" class="nav-link text-dark" href="/Identity/Account/Manage" title="Manage">Hello ` + aspnetHTML(c.user.email) + `!</a></li>
                    <li class="nav-item"><form id="logoutForm" class="form-inline" action="/Identity/Account/Logout?returnUrl=%2F" method="post"><button id="logout" type="submit" class="nav-link btn btn-link text-dark border-0">Logout</button>` + c.hidden() + `</form></li>
                </ul>`
	}
	c.send(status, aspnetHTMLType, `<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <title>`+aspnetHTML(title)+` - TodoApp</title>
</head>
<body>
    <header>
        <nav class="navbar navbar-expand-sm navbar-light bg-white border-bottom box-shadow mb-3">
            <div class="container">
                <a class="navbar-brand" href="/">TodoApp</a>
                <ul class="navbar-nav flex-grow-1">
                    <li class="nav-item"><a class="nav-link text-dark" href="/">Home</a></li>
                    <li class="nav-item"><a class="nav-link text-dark" href="/Todos">Todos</a></li>
                </ul>
                `+nav+`
            </div>
        </nav>
    </header>
    <div class="container">
        <main role="main" class="pb-3">
`+main+`
        </main>
    </div>
    <div id="root"></div>
    <footer class="border-top footer text-muted"><div class="container">&copy; 2024 - TodoApp</div></footer>
`+scripts+`
    <script>`+aspnetVisitJS+`</script>
</body>
</html>
`)
}

// aspnetSummary is asp-validation-summary="ModelOnly".
func aspnetSummary(errs ...string) string {
	if len(errs) == 0 {
		return `<div class="text-danger" role="alert"></div>`
	}
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("<li>" + aspnetHTML(e) + "</li>")
	}
	return `<div class="text-danger validation-summary-errors" data-valmsg-summary="true" role="alert"><ul>` + b.String() + `</ul></div>`
}

func (c *aspnetCall) home() {
	c.render(http.StatusOK, "Home page", `<div class="text-center">
    <h1 class="display-4">Welcome</h1>
    <p>Keep your todos at <a href="/Todos">Todos</a>.</p>
</div>`, "")
}

// aspnetLocal is IUrlHelper.IsLocalUrl.
func aspnetLocal(u string) bool {
	return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") && !strings.HasPrefix(u, "/\\") ||
		strings.HasPrefix(u, "~/") && !strings.HasPrefix(u, "~//") && !strings.HasPrefix(u, "~/\\")
}

// login is Identity UI's Account/Login page.
func (c *aspnetCall) login() {
	back, _ := aspnetQuery(c.r.URL.Query(), "returnUrl")
	if back == "" {
		back = "/"
	}
	var email string
	var errs []string
	if c.post() {
		f := c.form()
		email = f.Get("Input.Email")
		name, isOurs := strings.CutSuffix(strings.ToLower(strings.TrimSpace(email)), "@example.test")
		pw, rememberMe := f.Get("Input.Password"), f.Get("Input.RememberMe")
		switch {
		case email == "" || pw == "":
			if email == "" {
				errs = append(errs, "The Email field is required.")
			}
			if pw == "" {
				errs = append(errs, "The Password field is required.")
			}
		case rememberMe != "true" && rememberMe != "false":
			errs = append(errs, "The value '"+rememberMe+"' is not valid for Remember me?.")
		case !isOurs || name == "" || pw != "pw-"+name:
			errs = append(errs, "Invalid login attempt.")
		case !aspnetLocal(back):
			c.fail(http.StatusInternalServerError, "500 not local")
			return
		default:
			u := c.a.users[name]
			if u == nil {
				stamp := aspnetStamp()
				u = &aspnetUser{name: name, id: aspnetGUID(), email: name + "@example.test", stamp: stamp}
				c.a.users[name], c.a.byID[u.id] = u, u
			}
			now := time.Now().UTC().Truncate(time.Second)
			expires := ""
			if rememberMe == "true" {
				expires = now.Add(aspnetExpire).Format(http.TimeFormat)
			}
			c.appendChunked(aspnetAppCookie, c.a.ticket(u, rememberMe == "true", now), expires, "lax")
			c.a.Counts.Add("sessions", 1)
			c.redirect(strings.Replace(back, "~/", "/", 1))
			return
		}
		c.a.Counts.Add("login refused", 1)
	} else {
		c.cookies = append(c.cookies, aspnetSetCookie("Identity.External", "", aspnetEpoch, "lax")) // SignOutAsync(ExternalScheme)
	}
	valueAttr := ` value=""`
	if email != "" {
		valueAttr = ` value="` + aspnetHTML(email) + `"`
	}
	c.render(http.StatusOK, "Log in", `<h1>Log in</h1>
<div class="row">
    <div class="col-md-4">
        <section>
            <form id="account" method="post">
                <h2>Use a local account to log in.</h2>
                <hr />
                `+aspnetSummary(errs...)+`
                <div class="form-floating mb-3">
                    <input class="form-control" autocomplete="username" aria-required="true" placeholder="name@example.com" type="email" data-val="true" data-val-email="The Email field is not a valid e-mail address." data-val-required="The Email field is required." id="Input_Email" name="Input.Email"`+valueAttr+` />
                    <label class="form-label" for="Input_Email">Email</label>
                    <span class="text-danger field-validation-valid" data-valmsg-for="Input.Email" data-valmsg-replace="true"></span>
                </div>
                <div class="form-floating mb-3">
                    <input class="form-control" autocomplete="current-password" aria-required="true" placeholder="password" type="password" data-val="true" data-val-required="The Password field is required." id="Input_Password" name="Input.Password" />
                    <label class="form-label" for="Input_Password">Password</label>
                    <span class="text-danger field-validation-valid" data-valmsg-for="Input.Password" data-valmsg-replace="true"></span>
                </div>
                <div class="checkbox mb-3">
                    <label class="form-label" for="Input_RememberMe">
                        <input class="form-check-input" type="checkbox" data-val="true" data-val-required="The Remember me? field is required." id="Input_RememberMe" name="Input.RememberMe" value="true" />
                        Remember me?
                    </label>
                </div>
                <div>
                    <button id="login-submit" type="submit" class="w-100 btn btn-lg btn-primary">Log in</button>
                </div>
                <div>
                    <p><a id="forgot-password" href="/Identity/Account/ForgotPassword">Forgot your password?</a></p>
                    <p><a href="/Identity/Account/Register?returnUrl=`+aspnetURLEncode(back)+`">Register as a new user</a></p>
                    <p><a id="resend-confirmation" href="/Identity/Account/ResendEmailConfirmation">Resend email confirmation</a></p>
                </div>
            `+c.hidden()+`<input name="Input.RememberMe" type="hidden" value="false" /></form>
        </section>
    </div>
    <div class="col-md-6 col-md-offset-2">
        <section>
            <h3>Use another service to log in.</h3>
            <hr />
            <div><p>There are no external authentication services configured.</p></div>
        </section>
    </div>
</div>`, "")
}

// aspnetStamp is Identity's NewSecurityStamp: 20 random bytes in base32.
func aspnetStamp() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var b strings.Builder
	for _, x := range aspnetRandom(32) {
		b.WriteByte(alphabet[x%32])
	}
	return b.String()
}

// logout is Identity UI's Account/Logout page: SignOutAsync of the
// application, external and two-factor schemes, then LocalRedirect.
func (c *aspnetCall) logout() {
	if !c.post() {
		main := `<header><h1>Log out</h1><p>You have successfully logged out of the application.</p></header>`
		if c.user != nil {
			main = `<header><h1>Log out</h1></header><form class="form-inline" action="/Identity/Account/Logout?returnUrl=%2F" method="post"><button type="submit" class="nav-link btn btn-link text-dark">Click here to Logout</button>` + c.hidden() + `</form>`
		}
		c.render(http.StatusOK, "Log out", main, "")
		return
	}
	back, has := aspnetQuery(c.r.URL.Query(), "returnUrl")
	if has && !aspnetLocal(back) {
		c.fail(http.StatusInternalServerError, "500 not local")
		return
	}
	c.deleteChunked(aspnetAppCookie)
	c.cookies = append(c.cookies, aspnetSetCookie("Identity.External", "", aspnetEpoch, "lax"),
		aspnetSetCookie("Identity.TwoFactorUserId", "", aspnetEpoch, "lax"))
	c.a.Counts.Add("logouts", 1)
	if !has {
		c.redirect(aspnetLogoutPath)
		return
	}
	c.redirect(strings.Replace(back, "~/", "/", 1))
}

// find loads a todo of the user's, or answers 404.
func (c *aspnetCall) find(id int) *aspnetTodo {
	t := c.a.todos[id]
	switch {
	case t == nil:
		c.fail(http.StatusNotFound, "404 missing")
	case t.owner != c.user.id:
		c.fail(http.StatusNotFound, "404 foreign")
	default:
		return t
	}
	return nil
}

// save moves the rowversion counter on, as SQL Server does on a write.
func (c *aspnetCall) save(t *aspnetTodo) {
	c.a.rowVersion++
	t.version = c.a.rowVersion
}

func aspnetRowVersion(v uint64) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, v))
}

// list is Pages/Todos/Index: OnGet, OnPostDeleteAsync(id) and
// OnPostToggleAsync(id). Its [TempData] StatusMessage is loaded on every
// request and saved back.
func (c *aspnetCall) list() {
	q := c.r.URL.Query()
	handler, _ := aspnetQuery(q, "handler")
	handler = strings.ToLower(handler)
	status := c.loadTemp()["StatusMessage"]
	delete(c.temp, "StatusMessage")
	if c.post() && (handler == "delete" || handler == "toggle") {
		v, _ := aspnetQuery(q, "id")
		id, _ := strconv.Atoi(v)
		t := c.find(id)
		if t == nil {
			return
		}
		if handler == "toggle" {
			t.done = !t.done
			c.save(t)
			c.a.Counts.Add("todos toggled", 1)
			c.saveTemp(nil)
			c.send(http.StatusOK, "application/json; charset=utf-8", fmt.Sprintf(`{"id":%d,"done":%t}`, id, t.done))
			return
		}
		delete(c.a.todos, id)
		c.a.Counts.Add("todos deleted", 1)
		c.saveTemp(map[string]string{"StatusMessage": "Todo '" + t.title + "' deleted."})
		c.redirect("/Todos")
		return
	}
	c.saveTemp(nil)
	var b strings.Builder
	b.WriteString("<h1>Todos</h1>\n")
	if status != "" {
		b.WriteString(`<div id="status-message" class="alert alert-success" role="alert">` + aspnetHTML(status) + "</div>\n")
	}
	b.WriteString(`<p><a href="/Todos/Create">Create New</a></p>
<table id="todos" class="table">
    <thead><tr><th>Title</th><th>Done</th><th></th></tr></thead>
    <tbody>
`)
	for _, id := range slices.Sorted(maps.Keys(c.a.todos)) {
		t := c.a.todos[id]
		if t.owner != c.user.id {
			continue
		}
		check := ""
		if t.done {
			check = `checked="checked" `
		}
		fmt.Fprintf(&b, `        <tr id="todo-%[1]d" data-id="%[1]d">
            <td class="title">%[2]s</td>
            <td><input %[3]sclass="check-box" disabled="disabled" type="checkbox" /></td>
            <td>
                <a href="/Todos/Edit/%[1]d">Edit</a> |
                <button type="button" class="btn btn-link toggle" data-id="%[1]d">Toggle</button> |
                <form method="post" action="/Todos?id=%[1]d&amp;handler=Delete" class="d-inline"><button type="submit" class="btn btn-link">Delete</button>%[4]s</form>
            </td>
        </tr>
`, id, aspnetHTML(t.title), check, c.hidden())
	}
	b.WriteString("    </tbody>\n</table>")
	c.render(http.StatusOK, "Todos", b.String(), `    <script>
        const antiforgery = "`+c.requestToken()+`";
        async function toggleTodo(id) {
            const r = await fetch("/Todos?handler=Toggle&id=" + id, { method: "POST", headers: { "RequestVerificationToken": antiforgery } });
            if (!r.ok) throw new Error("toggle " + id + ": " + r.status);
            const t = await r.json();
            document.querySelector("#todo-" + t.id + " .check-box").checked = t.done;
            return t;
        }
        document.querySelectorAll("button.toggle").forEach(b => b.addEventListener("click", () => toggleTodo(b.dataset.id)));
    </script>`)
}

// aspnetTitleField is the Todo.Title input and its validation message.
func aspnetTitleField(title, msg string) string {
	cls, span := "form-control", `<span class="text-danger field-validation-valid" data-valmsg-for="Todo.Title" data-valmsg-replace="true"></span>`
	if msg != "" {
		cls = "form-control input-validation-error"
		span = `<span class="text-danger field-validation-error" data-valmsg-for="Todo.Title" data-valmsg-replace="true">` + aspnetHTML(msg) + `</span>`
	}
	return `<div class="form-group">
                <label class="control-label" for="Todo_Title">Title</label>
                <input class="` + cls + `" type="text" data-val="true" data-val-required="The Title field is required." id="Todo_Title" name="Todo.Title" value="` + aspnetHTML(title) + `" />
                ` + span + `
            </div>`
}

// create is Pages/Todos/Create: PRG to the list, with TempData.
func (c *aspnetCall) create() {
	title, msg := "", ""
	if c.post() {
		title = c.form().Get("Todo.Title")
		if strings.TrimSpace(title) != "" {
			c.a.lastTodo++
			t := &aspnetTodo{owner: c.user.id, title: title}
			c.save(t)
			c.a.todos[c.a.lastTodo] = t
			c.a.Counts.Add("todos created", 1)
			c.saveTemp(map[string]string{"StatusMessage": "Todo '" + title + "' saved."})
			c.redirect("/Todos")
			return
		}
		c.a.Counts.Add("invalid", 1)
		msg = "The Title field is required."
	}
	c.render(http.StatusOK, "Create", `<h1>Create</h1>
<h4>Todo</h4>
<hr />
<div class="row">
    <div class="col-md-4">
        <form method="post">
            `+aspnetSummary()+`
            `+aspnetTitleField(title, msg)+`
            <div class="form-group">
                <input type="submit" value="Create" class="btn btn-primary" />
            </div>
        `+c.hidden()+`</form>
    </div>
</div>
<div><a href="/Todos">Back to List</a></div>`, "")
}

// edit is Pages/Todos/Edit/{id:int}, with the RowVersion concurrency token.
func (c *aspnetCall) edit(id int) {
	t := c.find(id)
	if t == nil {
		return
	}
	status, title, done, msg, errs := http.StatusOK, t.title, t.done, "", []string(nil)
	if c.post() {
		f := c.form()
		posted, err := strconv.Atoi(f.Get("Todo.Id"))
		if err != nil || posted != id {
			c.fail(http.StatusNotFound, "404 mismatch")
			return
		}
		title, done = f.Get("Todo.Title"), f.Get("Todo.Done") == "true"
		switch {
		case strings.TrimSpace(title) == "":
			c.a.Counts.Add("invalid", 1)
			msg = "The Title field is required."
		case f.Get("Todo.RowVersion") != aspnetRowVersion(t.version):
			c.a.Counts.Add("concurrency refused", 1)
			status, title, done, errs = http.StatusConflict, t.title, t.done, []string{aspnetConcurrent}
		default:
			t.title, t.done = title, done
			c.save(t)
			c.a.Counts.Add("todos saved", 1)
			c.saveTemp(map[string]string{"StatusMessage": "Todo '" + title + "' saved."})
			c.redirect("/Todos")
			return
		}
	}
	check := ""
	if done {
		check = `checked="checked" `
	}
	c.render(status, "Edit", fmt.Sprintf(`<h1>Edit</h1>
<h4>Todo</h4>
<hr />
<div class="row">
    <div class="col-md-4">
        <form method="post">
            %s
            <input type="hidden" data-val="true" data-val-required="The Id field is required." id="Todo_Id" name="Todo.Id" value="%d" />
            <input type="hidden" id="Todo_RowVersion" name="Todo.RowVersion" value="%s" />
            %s
            <div class="form-group form-check">
                <label class="form-check-label">
                    <input class="form-check-input" type="checkbox" %sdata-val="true" data-val-required="The Done field is required." id="Todo_Done" name="Todo.Done" value="true" /> Done
                </label>
            </div>
            <div class="form-group">
                <input type="submit" value="Save" class="btn btn-primary" />
            </div>
        %s<input name="Todo.Done" type="hidden" value="false" /></form>
    </div>
</div>
<div><a href="/Todos">Back to List</a></div>`, aspnetSummary(errs...), id, aspnetRowVersion(t.version), aspnetTitleField(title, msg), check, c.hidden()), "")
}

// aspnetVisitJS moves a browser's visit on like a person, one step a page:
// log in as the u of the ReturnUrl (/Todos?u=NAME), create two todos, edit
// the first, toggle the second with the page's own fetch, delete the first
// with its row's form, log out; the home page then says "done". A page acts
// only as the step it expects (a reloaded one does nothing), after 100 to
// 200 ms, and shows anything unexpected as "error: ...".
const aspnetVisitJS = `(() => {
  const S = sessionStorage, q = s => document.querySelector(s), all = s => [...document.querySelectorAll(s)];
  const root = document.getElementById("root"), fail = m => { root.textContent = "error: " + m; };
  const p = location.pathname.toLowerCase().replace(/\/$/, "");
  const kind = p === "/identity/account/login" ? "login" : p === "/todos" ? "list" : p === "/todos/create" ? "create" :
    /^\/todos\/edit\/\d+$/.test(p) ? "edit" : p === "" ? "home" : p;
  const steps = ["login", "list", "create", "list", "create", "list", "edit", "list", "list", "home"];
  const n = +(S.getItem("aspnet.step") || 0), check = (ok, m) => { if (!ok) throw new Error(m + " at step " + n); };
  const status = () => (q("#status-message") || {}).textContent || "";
  const said = t => check(status() === t, "status " + JSON.stringify(status()) + ", not " + JSON.stringify(t));
  const rows = k => { const r = all("#todos tbody tr"); check(r.length === k, r.length + " todos, not " + k); return r; };
  const title = r => r.querySelector(".title").textContent;
  const submit = (f, fields) => {
    check(f, "no form");
    for (const [k, v] of Object.entries(fields || {})) {
      const e = f.querySelector('[name="' + k + '"]');
      check(e, "no field " + k);
      if (e.type === "checkbox") e.checked = v; else e.value = v;
    }
    f.requestSubmit();
  };
  const create = () => { location.href = q('a[href="/Todos/Create"]').href; };
  const acts = [() => {
    const back = new URLSearchParams(location.search).get("ReturnUrl") || "";
    const u = new URLSearchParams(back.split("?")[1] || "").get("u") || S.getItem("aspnet.u");
    check(u, "no user in " + location.search);
    S.setItem("aspnet.u", u);
    submit(q("form#account"), { "Input.Email": u + "@example.test", "Input.Password": "pw-" + u, "Input.RememberMe": true });
  }, () => { rows(0); create(); },
  () => submit(q("main form"), { "Todo.Title": "Buy milk" }),
  () => { said("Todo 'Buy milk' saved."); rows(1); create(); },
  () => submit(q("main form"), { "Todo.Title": "Walk the dog" }),
  () => {
    said("Todo 'Walk the dog' saved.");
    const r = rows(2);
    check(title(r[0]) === "Buy milk" && title(r[1]) === "Walk the dog", "titles " + title(r[0]) + ", " + title(r[1]));
    location.href = r[0].querySelector('a[href^="/Todos/Edit/"]').href;
  }, () => {
    check(/^[A-Za-z0-9+\/]{11}=$/.test(q('[name="Todo.RowVersion"]').value), "no RowVersion");
    submit(q("main form"), { "Todo.Title": "Buy oat milk" });
  }, async () => {
    said("Todo 'Buy oat milk' saved.");
    const r = rows(2);
    check(title(r[0]) === "Buy oat milk", "not edited: " + title(r[0]));
    const t = await toggleTodo(r[1].dataset.id);
    check(t.id === +r[1].dataset.id && t.done === true, "toggled " + JSON.stringify(t));
    check(r[1].querySelector(".check-box").checked, "the box is not checked");
    await new Promise(ok => setTimeout(ok, 100 + Math.random() * 100));
    submit(r[0].querySelector('form[action*="handler=Delete"]'));
  }, () => {
    said("Todo 'Buy oat milk' deleted.");
    const r = rows(1);
    check(title(r[0]) === "Walk the dog" && r[0].querySelector(".check-box").checked, "left: " + title(r[0]));
    submit(q("#logoutForm"));
  }, () => {
    check(q("#login") && !q("#logoutForm"), "still logged in");
    S.removeItem("aspnet.step");
    S.removeItem("aspnet.u");
    root.textContent = "done";
  }];
  if (kind !== steps[n]) return n > 0 && kind === steps[n - 1] || fail("page " + kind + " at step " + n);
  S.setItem("aspnet.step", n + 1);
  setTimeout(async () => { try { await acts[n](); } catch (e) { fail(e.message); } }, 100 + Math.random() * 100);
})();`

// AspNetClient is a person visiting an AspNet with a browser, done with
// net/http: the visit of the pages' script, from an anonymous GET
// /Todos?u=NAME sent to log in. Each form is submitted as the browser
// submits it (its inputs, checked boxes and hidden fields, its own
// __RequestVerificationToken, to its action or the page's own URL); the
// toggle is the page script's fetch with the RequestVerificationToken
// header from `const antiforgery`. It fails tb on any status but the one
// ASP.NET Core answers.
func AspNetClient(tb testing.TB, base, user string) {
	tb.Helper()
	newAspNetBrowser(tb, base).visit(user)
}

// aspnetBrowser is a browser context of AspNetClient: a cookie jar and
// connections of its own, and the last page.
type aspnetBrowser struct {
	tb          testing.TB
	c           *http.Client
	jar         http.CookieJar
	base        string
	page, where string // the last page, and its path and query
}

const aspnetNavigate = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

var (
	aspnetFormRE   = regexp.MustCompile(`(?s)<form ([^>]*)>(.*?)</form>`)
	aspnetAttrRE   = regexp.MustCompile(`([a-zA-Z-]+)="([^"]*)"`)
	aspnetInputRE  = regexp.MustCompile(`<input ([^>]*?)\s*/?>`)
	aspnetConstRE  = regexp.MustCompile(`const antiforgery = "([^"]+)";`)
	aspnetRowRE    = regexp.MustCompile(`<tr id="todo-(\d+)" data-id="\d+">\s*<td class="title">([^<]*)</td>\s*<td><input (checked="checked" )?`)
	aspnetStatusRE = regexp.MustCompile(`<div id="status-message"[^>]*>([^<]*)</div>`)
)

func newAspNetBrowser(tb testing.TB, base string) *aspnetBrowser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &aspnetBrowser{tb: tb, base: base, jar: jar, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request to path (absolute, or under base) and fails the test
// unless the status is want.
func (u *aspnetBrowser) do(method, path, body string, want int, header ...string) Answer {
	u.tb.Helper()
	if strings.HasPrefix(path, "/") {
		path = u.base + path
	}
	ans := Do(u.tb, u.c, method, path, body, header...)
	if ans.Status != want {
		u.tb.Fatalf("%s %s: %d, want %d: %.300s", method, path, ans.Status, want, ans.Body)
	}
	return ans
}

// get navigates to a page and keeps it.
func (u *aspnetBrowser) get(path string) {
	u.tb.Helper()
	ans := u.do(http.MethodGet, path, "", http.StatusOK, "Accept", aspnetNavigate)
	p, _ := url.Parse(path)
	u.page, u.where = string(ans.Body), p.RequestURI()
}

// aspnetAttrs reads a tag's attributes, unescaped.
func aspnetAttrs(tag string) map[string]string {
	m := map[string]string{}
	for _, a := range aspnetAttrRE.FindAllStringSubmatch(tag, -1) {
		m[a[1]] = html.UnescapeString(a[2])
	}
	return m
}

// aspnetForm is a form of a page: where it posts and what it sends as it is.
type aspnetForm struct {
	attrs  map[string]string
	action string
	values url.Values
}

// forms lists the last page's forms.
func (u *aspnetBrowser) forms() []aspnetForm {
	var fs []aspnetForm
	for _, m := range aspnetFormRE.FindAllStringSubmatch(u.page, -1) {
		f := aspnetForm{attrs: aspnetAttrs(m[1]), values: url.Values{}}
		f.action = f.attrs["action"]
		if f.action == "" {
			f.action = u.where
		}
		for _, in := range aspnetInputRE.FindAllStringSubmatch(m[2], -1) {
			a := aspnetAttrs(in[1])
			if a["name"] == "" || a["type"] == "submit" || a["type"] == "checkbox" && a["checked"] == "" {
				continue
			}
			f.values.Add(a["name"], a["value"])
		}
		fs = append(fs, f)
	}
	return fs
}

// form finds the last page's form whose attribute has the value.
func (u *aspnetBrowser) form(attr, value string) aspnetForm {
	u.tb.Helper()
	for _, f := range u.forms() {
		if f.attrs[attr] == value || attr == "action" && f.action == value {
			return f
		}
	}
	u.tb.Fatalf("%s has no form with %s=%q", u.where, attr, value)
	return aspnetForm{}
}

// mainForm is the page's own form: the first without an action.
func (u *aspnetBrowser) mainForm() aspnetForm {
	u.tb.Helper()
	for _, f := range u.forms() {
		if f.attrs["action"] == "" {
			return f
		}
	}
	u.tb.Fatalf("%s has no form of its own", u.where)
	return aspnetForm{}
}

// submit posts a form with the fields set, and returns the Location.
func (u *aspnetBrowser) submit(f aspnetForm, fields url.Values, want int) string {
	u.tb.Helper()
	if f.values.Get(aspnetAFField) == "" {
		u.tb.Fatalf("the form to %s on %s has no token", f.action, u.where)
	}
	maps.Copy(f.values, fields)
	ans := u.do(http.MethodPost, f.action, f.values.Encode(), want, "Accept", aspnetNavigate, "Origin", u.base,
		"Content-Type", "application/x-www-form-urlencoded")
	if want == http.StatusOK || want == http.StatusConflict {
		u.page, u.where = string(ans.Body), f.action
	}
	return ans.Header.Get("Location")
}

// aspnetRow is a row of the list.
type aspnetRow struct {
	id, title string
	done      bool
}

func (u *aspnetBrowser) rows() []aspnetRow {
	var rs []aspnetRow
	for _, m := range aspnetRowRE.FindAllStringSubmatch(u.page, -1) {
		rs = append(rs, aspnetRow{m[1], html.UnescapeString(m[2]), m[3] != ""})
	}
	return rs
}

func (u *aspnetBrowser) status() string {
	if m := aspnetStatusRE.FindStringSubmatch(u.page); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// login logs in with the login page's form, remembered as the browser's
// checked box sends it, and returns where it was sent.
func (u *aspnetBrowser) login(user, password string, want int) string {
	u.tb.Helper()
	return u.submit(u.form("id", "account"), url.Values{"Input.Email": {user + "@example.test"}, "Input.Password": {password},
		"Input.RememberMe": {"true", "false"}}, want)
}

func (u *aspnetBrowser) visit(user string) {
	u.tb.Helper()
	must := func(ok bool, format string, args ...any) {
		if u.tb.Helper(); !ok {
			u.tb.Fatalf(format, args...)
		}
	}
	start := "/Todos?u=" + url.QueryEscape(user)
	loc := u.do(http.MethodGet, start, "", http.StatusFound, "Accept", aspnetNavigate).Header.Get("Location")
	must(loc == u.base+aspnetLoginPath+"?ReturnUrl="+aspnetURLEncode(start), "anonymous %s sent to %q", start, loc)
	u.get(loc)
	loc = u.login(user, "pw-"+user, http.StatusFound)
	must(loc == start, "logged in, sent to %q", loc)
	u.get(loc)
	must(len(u.rows()) == 0, "a new user has todos: %v", u.rows())
	for i, title := range []string{"Buy milk", "Walk the dog"} {
		u.get("/Todos/Create")
		loc = u.submit(u.mainForm(), url.Values{"Todo.Title": {title}}, http.StatusFound)
		must(loc == "/Todos", "created, sent to %q", loc)
		u.get(loc)
		must(u.status() == "Todo '"+title+"' saved." && len(u.rows()) == i+1, "after %q: %q, %v", title, u.status(), u.rows())
	}
	rows := u.rows()
	u.get("/Todos/Edit/" + rows[0].id)
	f := u.mainForm()
	must(f.values.Get("Todo.Id") == rows[0].id && len(f.values.Get("Todo.RowVersion")) == 12, "edit form %v", f.values)
	loc = u.submit(f, url.Values{"Todo.Title": {"Buy oat milk"}}, http.StatusFound)
	must(loc == "/Todos", "saved, sent to %q", loc)
	u.get(loc)
	must(u.status() == "Todo 'Buy oat milk' saved." && u.rows()[0].title == "Buy oat milk", "after the edit: %q, %v", u.status(), u.rows())
	m := aspnetConstRE.FindStringSubmatch(u.page)
	must(m != nil, "no antiforgery constant in the list page")
	ans := u.do(http.MethodPost, "/Todos?handler=Toggle&id="+rows[1].id, "", http.StatusOK, "Accept", "*/*", "Origin", u.base, aspnetAFHeader, m[1])
	must(string(ans.Body) == `{"id":`+rows[1].id+`,"done":true}`, "toggled: %s", ans.Body)
	loc = u.submit(u.form("action", "/Todos?id="+rows[0].id+"&handler=Delete"), nil, http.StatusFound)
	must(loc == "/Todos", "deleted, sent to %q", loc)
	u.get(loc)
	left := u.rows()
	must(u.status() == "Todo 'Buy oat milk' deleted." && len(left) == 1 && left[0].title == "Walk the dog" && left[0].done,
		"after the delete: %q, %v", u.status(), left)
	loc = u.submit(u.form("id", "logoutForm"), nil, http.StatusFound)
	must(loc == "/", "logged out, sent to %q", loc)
	u.get(loc)
	must(strings.Contains(u.page, `id="login"`) && !strings.Contains(u.page, `id="logoutForm"`), "still logged in after logging out")
}
