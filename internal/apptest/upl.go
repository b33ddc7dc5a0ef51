package apptest

import (
	"bytes"
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Uploads is a backend that answers, on the wire, as a Rails 7.0 app
// (config.load_defaults 7.0) whose files go to an S3-compatible store with
// Active Storage direct uploads, and which imports CSV files posted as
// multipart forms. The store is served by the same server under /store/,
// and answers as S3 does.
//
// Signing in is as with Rails' authentication generator: GET /session/new,
// POST /session with email_address (NAME@example.test) and password
// (pw-NAME), answered 302 to where signing in was asked for (else
// /uploads); a wrong one is 302 back to /session/new with a flash alert.
// Signing out is a button_to form, _method=delete, to /session, answered 303
// to /session/new. Anonymous requests are sent (302) to /session/new, the
// URL kept in the session as return_to_after_authenticating; the sign-in
// page names it in a <meta name="return-to">, an addition of this app so
// that the page's script learns NAME of the start URL /uploads?u=NAME. The
// session is the cookie store's encrypted cookie _files_session
// (AES-256-GCM with a key PBKDF2-SHA256 derived from secret_key_base,
// "authenticated encrypted cookie", the JSON message in Rails' _rails
// envelope with purpose cookie._files_session; data--iv--tag), sent again
// with each answer that read the session, not with one that raised. CSRF is
// ActionController::RequestForgeryProtection with per_form_csrf_tokens and
// the Origin check: each form carries its own masked authenticity_token
// (HMAC-SHA256 of the form's path#method by the session's secret, XORed with
// a fresh one-time pad), the csrf-token meta tag a global one, good also as
// X-CSRF-Token; a bad one is a 422 InvalidAuthenticityToken.
//
// Direct uploads follow @rails/activestorage and ActiveStorage's own
// controllers (rails/rails activestorage/app/controllers, SetBlob and
// S3Service): the upload form's file field has data-direct-upload-url; the
// page's script (a small activestorage of its own) computes the file's
// base64 MD5 and POSTs {"blob":{filename,content_type,byte_size,checksum}}
// as JSON with X-CSRF-Token to /rails/active_storage/direct_uploads (here
// behind sign-in, the blob owned by the user), answered 200 with the blob's
// as_json (id, key: SecureRandom.base36(28), ..., signed_id) and
// direct_upload {url, headers}. The signed_id is ActiveStorage.verifier's
// (Rails.application.message_verifier("ActiveStorage"): HMAC-SHA1 in hex,
// of the base64 of {"_rails":{"message":<base64 of Marshal.dump(id)>,
// "exp":null,"pur":"blob_id"}}). The url is an AWS SigV4 presigned PUT to
// the store (path style: /store/files-storage/KEY, X-Amz-Expires=300,
// signed headers content-md5;content-type;host as older Active Storage
// signs them: newer S3Service also signs content-length and adds a
// Content-Disposition header), the headers Content-Type and Content-MD5. The store checks the signature
// (method, key, query, signed headers), the expiry, that a presigned URL is
// used once (a strictness of this store, not S3's), and the body's MD5
// (400 BadDigest); refusals are S3's XML errors, SignatureDoesNotMatch or
// AccessDenied. The form then posts, as multipart (form_with with a file
// field), authenticity_token and upload[file]=signed_id in a hidden input,
// the file input disabled as activestorage leaves it; the app finds the
// blob by the signed id and wants it the user's, stored in full and not yet
// attached (and no file posted through the app), else 422; it answers 302
// to /uploads/ID. The upload page links
// to /rails/active_storage/blobs/redirect/SIGNED_ID/FILENAME, which answers
// 302 (Cache-Control max-age=300, private) to a presigned GET with
// response-content-disposition (attachment, text/plain not being allowed
// inline) and response-content-type; blobs are scoped to their user here.
//
// Imports: GET /imports/new has a multipart form (import[kind]=contacts,
// import[file] a CSV of name,email rows); POST /imports answers 302 to
// /imports/ID, whose page shows the rows imported. A multipart body is
// parsed strictly, as Rack would refuse it with a 400: a boundary in the
// Content-Type, a Content-Length (not chunked) that the body fills, the body
// beginning with the boundary and ending with the closing one, every part a
// form-data with a name. Uploads and imports have small auto-increment ids
// shared by all users and are their creator's: anyone else's is a 404.
//
// Counts: "sessions" (sign-ins), "login refused", "login redirects"
// (anonymous requests sent to sign in), "422 csrf", "blobs created" (direct
// uploads answered), "403 presigned" (the store refusing a presigned URL:
// none, forged, tampered, reused or expired), "400 bad digest" (a PUT body
// unlike its Content-MD5), "objects stored", "uploads attached", "bad
// signed_id" (POST /uploads refused 422 for its signed id, or a blob
// redirect's signed id that does not verify, 404), "downloads" (presigned
// GETs served), "imports", "rows imported", "multipart refused" (400),
// "400 params" (another body that does not parse, or no blob param),
// "422 invalid" (a direct upload's blob or an import that does not
// validate), "404 foreign" (another user's upload, import or blob), "404
// missing", "404 route", "404 no such key" and "405 store" (the store's
// NoSuchKey, NoSuchBucket and MethodNotAllowed), "bad session
// cookie" (a _files_session that does not decrypt: the request goes on
// anonymous), "logouts". All but sessions, blobs created, objects stored,
// uploads attached, downloads, imports, rows imported and logouts are
// refusals; a whole visit has one login redirect, its start.
type Uploads struct {
	URL    string
	Counts Counts

	mu                                     sync.Mutex
	aead                                   cipher.AEAD // the encrypted cookie jar's
	verifier                               []byte      // ActiveStorage.verifier's key
	users                                  map[string]int
	names                                  map[int]string
	blobs                                  map[int]*uplBlob
	objects                                map[string]*uplObject // the store's, by key
	used                                   map[string]time.Time  // presigned signatures used, until they expire
	uploads                                map[int]*uplUpload
	imports                                map[int]*uplImport
	lastUser, lastBlob, lastUpload, lastIm int
}

type (
	uplBlob struct {
		owner                      int
		key, filename, contentType string
		checksum                   string
		byteSize                   int64
		created                    time.Time
		attached                   int // the upload's id
	}
	uplObject struct {
		data        []byte
		contentType string
		modified    time.Time
	}
	uplUpload struct {
		owner, blob int
	}
	uplImport struct {
		owner    int
		kind     string
		filename string
		rows     [][]string
	}
)

const (
	uplSecretKeyBase = "9d2b7e41c0a35f86e1d4b2c79a0f3e58d16b4a92c7e05f31a8d6b2e9f04c7a15e3b8d2f6a1c9e07b4d5f2a8c3e6b9d01f7a4c2e8b5d3f9a6c1e0b7d4f2a8c5"
	uplCookie        = "_files_session"
	uplTokenLen      = 32 // AUTHENTICITY_TOKEN_LENGTH
	uplBucket        = "files-storage"
	uplRegion        = "us-east-1"
	uplAccessKey     = "AKIAIOSFODNN7EXAMPLE"
	uplSecretKey     = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	uplExpires       = 300 // ActiveStorage.service_urls_expire_in
	uplMaxBody       = 1 << 20
	uplAmzDate       = "20060102T150405Z"
	uplRailsTime     = "2006-01-02T15:04:05.000Z"
)

// NewUploads starts an Uploads on loopback until the test ends.
func NewUploads(tb testing.TB) *Uploads {
	a := &Uploads{users: map[string]int{}, names: map[int]string{}, blobs: map[int]*uplBlob{}, objects: map[string]*uplObject{},
		used: map[string]time.Time{}, uploads: map[int]*uplUpload{}, imports: map[int]*uplImport{}}
	// Rails.application.key_generator: PBKDF2-SHA256 of secret_key_base,
	// 1000 rounds, as config.load_defaults 7.0 has it.
	block, _ := aes.NewCipher(uplKey("authenticated encrypted cookie", 32))
	a.aead, _ = cipher.NewGCM(block)
	a.verifier = uplKey("ActiveStorage", 64)
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

func uplKey(salt string, n int) []byte {
	k, _ := pbkdf2.Key(sha256.New, uplSecretKeyBase, []byte(salt), 1000, n)
	return k
}

// Users returns the names of the users who signed in, sorted.
func (a *Uploads) Users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.users))
}

func uplRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// uplBase36 is SecureRandom.base36(n): lowercase letters and digits.
func uplBase36(n int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := uplRandom(n)
	for i := range b {
		b[i] = digits[int(b[i])%36]
	}
	return string(b)
}

func uplUUID() string {
	b := uplRandom(16)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// uplEsc is ERB's html_escape.
func uplEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}

// uplHost is request.host with its port as Rails reads it: the last
// X-Forwarded-Host a proxy added, else Host.
func uplHost(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-Host"); f != "" {
		parts := strings.Split(f, ",")
		return strings.TrimSpace(parts[len(parts)-1])
	}
	return r.Host
}

// uplSession is the session hash as the cookie store keeps it.
type uplSession struct {
	SessionID string    `json:"session_id"`
	CSRF      string    `json:"_csrf_token,omitempty"`
	ReturnTo  string    `json:"return_to_after_authenticating,omitempty"`
	UserID    int       `json:"user_id,omitempty"`
	Flash     *uplFlash `json:"flash,omitempty"`
}

type uplFlash struct {
	Discard []string          `json:"discard"`
	Flashes map[string]string `json:"flashes"`
}

// uplEnvelope is Rails 7.0's message metadata: the serialized message in
// base64, no expiry, a purpose.
type uplEnvelope struct {
	Rails struct {
		Message string  `json:"message"`
		Exp     *string `json:"exp"`
		Pur     string  `json:"pur"`
	} `json:"_rails"`
}

// seal is the encrypted cookie jar's encrypt_and_sign, escaped as Rack
// escapes cookie values.
func (a *Uploads) seal(s *uplSession) string {
	inner, _ := json.Marshal(s)
	var m uplEnvelope
	m.Rails.Message, m.Rails.Pur = base64.StdEncoding.EncodeToString(inner), "cookie."+uplCookie
	env, _ := json.Marshal(m)
	iv := uplRandom(12)
	out := a.aead.Seal(nil, iv, env, nil)
	n, b := len(out)-16, base64.StdEncoding.EncodeToString
	return url.QueryEscape(b(out[:n]) + "--" + b(iv) + "--" + b(out[n:]))
}

// open decrypts a cookie value; nil if it does not.
func (a *Uploads) open(v string) *uplSession {
	v, _ = url.QueryUnescape(v)
	var raw [3][]byte
	parts, s, m := strings.Split(v, "--"), &uplSession{}, uplEnvelope{}
	for i := range min(len(parts), 3) {
		raw[i], _ = base64.StdEncoding.DecodeString(parts[i])
	}
	if len(parts) != 3 || len(raw[1]) != 12 || len(raw[2]) != 16 {
		return nil
	}
	env, err := a.aead.Open(nil, raw[1], append(raw[0], raw[2]...), nil)
	if err != nil || json.Unmarshal(env, &m) != nil || m.Rails.Pur != "cookie."+uplCookie {
		return nil
	}
	if inner, err := base64.StdEncoding.DecodeString(m.Rails.Message); err != nil || json.Unmarshal(inner, s) != nil || s.SessionID == "" {
		return nil
	}
	return s
}

// uplPart is a file of a multipart body.
type uplPart struct {
	filename, contentType string
	data                  []byte
}

// uplCall is one request on its way through the app.
type uplCall struct {
	a       *Uploads
	w       http.ResponseWriter
	r       *http.Request
	method  string // after Rack::MethodOverride
	action  string // controller#action
	params  []string
	start   time.Time
	form    url.Values          // the body's parameters
	files   map[string]*uplPart // the body's files
	blob    map[string]any      // a JSON body's "blob"
	bodyErr error               // why the body does not parse
	multi   bool                // the body was multipart
	sess    *uplSession
	uid     int
	user    string
}

// uplExact is config/routes.rb but for the routes with ids: root, resource
// :session, resources :uploads and :imports, and Active Storage's.
var uplExact = map[string]string{ //nolint:gochecknoglobals // constant table
	"GET /": "uploads#index", "GET /session/new": "sessions#new", "POST /session": "sessions#create", "DELETE /session": "sessions#destroy",
	"GET /uploads": "uploads#index", "POST /uploads": "uploads#create", "GET /imports/new": "imports#new", "POST /imports": "imports#create",
	"POST /rails/active_storage/direct_uploads": "direct_uploads#create",
}

// uplRoute recognizes an escaped path: its controller#action and the
// parameters in it.
func uplRoute(method, escaped string) (string, []string) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	p := cmp.Or(strings.TrimSuffix(escaped, "/"), "/")
	if act, ok := uplExact[method+" "+p]; ok {
		return act, nil
	}
	segs := strings.Split(p, "/")
	switch {
	case method == http.MethodGet && len(segs) == 3 && (segs[1] == "uploads" || segs[1] == "imports") && segs[2] != "" && !strings.Contains(segs[2], "."):
		return segs[1] + "#show", segs[2:]
	case method == http.MethodGet && len(segs) >= 7 && strings.Join(segs[1:5], "/") == "rails/active_storage/blobs/redirect" && segs[5] != "":
		sid, err1 := url.PathUnescape(segs[5])
		name, err2 := url.PathUnescape(strings.Join(segs[6:], "/"))
		if err1 == nil && err2 == nil {
			return "blobs/redirect#show", []string{sid, name}
		}
	}
	return "", nil
}

var uplActions = map[string]func(*uplCall){ //nolint:gochecknoglobals // constant table
	"sessions#new": (*uplCall).signIn, "sessions#create": (*uplCall).signIn, "sessions#destroy": (*uplCall).signOut,
	"uploads#index": (*uplCall).uploadList, "uploads#create": (*uplCall).uploadCreate, "uploads#show": (*uplCall).uploadShow,
	"imports#new": (*uplCall).importNew, "imports#create": (*uplCall).importCreate, "imports#show": (*uplCall).importShow,
	"direct_uploads#create": (*uplCall).directUpload, "blobs/redirect#show": (*uplCall).blobRedirect,
}

func (a *Uploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/favicon.ico": // public/favicon.ico, served before the app
		w.Header().Set("Content-Type", "image/vnd.microsoft.icon")
		http.ServeContent(w, r, "favicon.ico", time.Time{}, strings.NewReader(""))
		return
	case strings.HasPrefix(r.URL.Path, "/store/"):
		a.store(w, r)
		return
	}
	c := &uplCall{a: a, w: w, r: r, method: r.Method, start: time.Now(), form: url.Values{}, files: map[string]*uplPart{}}
	if r.Method == http.MethodPost {
		c.bodyErr = c.readBody() // before taking the lock: the client may be slow
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if m := strings.ToUpper(cmp.Or(c.form.Get("_method"), r.Header.Get("X-HTTP-Method-Override"))); r.Method == http.MethodPost &&
		slices.Contains([]string{"PUT", "PATCH", "DELETE", "OPTIONS", "LINK", "UNLINK"}, m) { // Rack::MethodOverride
		c.method = m
	}
	if c.action, c.params = uplRoute(c.method, r.URL.EscapedPath()); c.action == "" {
		c.fail(http.StatusNotFound, "404 route", "No route matches ["+c.method+"] \""+r.URL.Path+"\"")
		return
	}
	if c.bodyErr != nil {
		what := map[bool]string{true: "multipart refused", false: "400 params"}[c.multi]
		c.fail(http.StatusBadRequest, what, "ActionController::BadRequest: Invalid request parameters: "+c.bodyErr.Error())
		return
	}
	c.session() // every action reads it, to authenticate
	if reason := c.forgery(); reason != "" {
		c.fail(http.StatusUnprocessableEntity, "422 csrf", "ActionController::InvalidAuthenticityToken: "+reason)
		return
	}
	if c.uid == 0 && (c.action == "sessions#destroy" || !strings.HasPrefix(c.action, "sessions#")) {
		c.sess.ReturnTo = "http://" + uplHost(r) + r.URL.RequestURI() // request_authentication
		a.Counts.Add("login redirects", 1)
		c.redirect(http.StatusFound, "/session/new")
		return
	}
	uplActions[c.action](c)
}

var uplBoundaryRE = regexp.MustCompile(`^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$`)

// readBody parses a POST's body as Rails' parameter parsers do: a form,
// a multipart form (strictly) or JSON.
func (c *uplCall) readBody() error {
	ct, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if c.r.Header.Get("Content-Type") == "" {
		return nil
	}
	if ct == "multipart/form-data" || strings.HasPrefix(c.r.Header.Get("Content-Type"), "multipart/") {
		c.multi = true
	}
	if err != nil {
		return fmt.Errorf("content type %q: %w", c.r.Header.Get("Content-Type"), err)
	}
	if c.multi {
		return c.readMultipart(ct, params["boundary"])
	}
	body, err := io.ReadAll(io.LimitReader(c.r.Body, uplMaxBody+1))
	switch {
	case err != nil:
		return err
	case len(body) > uplMaxBody:
		return errors.New("the body is too large")
	case ct == "application/x-www-form-urlencoded":
		c.form, err = url.ParseQuery(string(body))
		return err
	case ct == "application/json":
		var v struct {
			Blob map[string]any `json:"blob"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return fmt.Errorf("error occurred while parsing request parameters: %w", err)
		}
		c.blob = v.Blob
	}
	return nil
}

// readMultipart parses a multipart/form-data body strictly.
func (c *uplCall) readMultipart(ct, boundary string) error {
	switch {
	case ct != "multipart/form-data":
		return fmt.Errorf("%s is not multipart/form-data", ct)
	case !uplBoundaryRE.MatchString(boundary):
		return fmt.Errorf("bad boundary %q", boundary)
	case c.r.ContentLength < 0:
		return errors.New("no Content-Length")
	case c.r.ContentLength > uplMaxBody:
		return errors.New("the body is too large")
	}
	body, err := io.ReadAll(io.LimitReader(c.r.Body, uplMaxBody+1))
	switch {
	case err != nil:
		return fmt.Errorf("bad content body: %w", err)
	case int64(len(body)) != c.r.ContentLength:
		return fmt.Errorf("%d bytes of a Content-Length of %d", len(body), c.r.ContentLength)
	case !bytes.HasPrefix(body, []byte("--"+boundary+"\r\n")):
		return errors.New("the body does not begin with the boundary")
	case !bytes.HasSuffix(body, []byte("\r\n--"+boundary+"--\r\n")) && !bytes.HasSuffix(body, []byte("\r\n--"+boundary+"--")):
		return errors.New("the body does not end with the closing boundary")
	}
	mr, n := multipart.NewReader(bytes.NewReader(body), boundary), 0
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("part %d: %w", n+1, err)
		}
		if n++; n > 128 {
			return errors.New("too many parts")
		}
		disp, dp, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		if err != nil || disp != "form-data" || dp["name"] == "" {
			return fmt.Errorf("part %d: Content-Disposition %q", n, p.Header.Get("Content-Disposition"))
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return fmt.Errorf("part %d: %w", n, err)
		}
		if name, isFile := dp["filename"]; isFile {
			if p.Header.Get("Content-Type") == "" {
				return fmt.Errorf("part %d: a file without a Content-Type", n)
			}
			if name != "" {
				c.files[dp["name"]] = &uplPart{filename: name, contentType: p.Header.Get("Content-Type"), data: data}
			}
			continue
		}
		c.form.Add(dp["name"], string(data))
	}
	if n == 0 || bytes.Count(body, []byte("\r\n--"+boundary)) != n {
		return errors.New("the parts and the boundaries do not agree")
	}
	return nil
}

// param is params[name]: the body's, else the query's.
func (c *uplCall) param(name string) string {
	if v, ok := c.form[name]; ok {
		return v[len(v)-1]
	}
	return c.r.URL.Query().Get(name)
}

// session reads the session from its cookie, or starts one.
func (c *uplCall) session() *uplSession {
	if c.sess == nil {
		if ck, err := c.r.Cookie(uplCookie); err == nil {
			if c.sess = c.a.open(ck.Value); c.sess == nil {
				c.a.Counts.Add("bad session cookie", 1)
			}
		}
		if c.sess == nil {
			c.reset()
		}
		if c.uid = c.sess.UserID; c.uid != 0 {
			c.user = c.a.names[c.uid]
		}
	}
	return c.sess
}

// reset is reset_session: a new session id, no CSRF secret yet.
func (c *uplCall) reset() {
	c.sess, c.uid, c.user = &uplSession{SessionID: hex.EncodeToString(uplRandom(16))}, 0, ""
}

// secret is real_csrf_token: the session's, made on first use.
func (c *uplCall) secret() []byte {
	if s := c.session(); s.CSRF == "" {
		s.CSRF = base64.RawURLEncoding.EncodeToString(uplRandom(uplTokenLen))
	}
	b, _ := base64.RawURLEncoding.DecodeString(c.sess.CSRF)
	return b
}

// raw is csrf_token_hmac: the global token with no action, else the
// per-form token of the action's path and the method.
func (c *uplCall) raw(action, method string) []byte {
	id := "!real_csrf_token"
	if action != "" {
		id = strings.TrimSuffix(action, "/") + "#" + strings.ToLower(method)
	}
	return uplHMAC(c.secret(), id)
}

// token is masked_authenticity_token: a one-time pad, and the raw token
// XORed with it.
func (c *uplCall) token(action, method string) string {
	pad, raw := uplRandom(uplTokenLen), c.raw(action, method)
	for i := range raw {
		raw[i] ^= pad[i]
	}
	return base64.RawURLEncoding.EncodeToString(append(pad, raw...))
}

// valid is valid_authenticity_token?: the secret unmasked, or masked the
// global token, the secret or the per-form token of this path and method.
func (c *uplCall) valid(t string) bool {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(t, "="))
	switch {
	case err != nil || t == "":
	case len(b) == uplTokenLen:
		return hmac.Equal(b, c.secret())
	case len(b) == 2*uplTokenLen:
		for i := range uplTokenLen {
			b[uplTokenLen+i] ^= b[i]
		}
		b = b[uplTokenLen:]
		return hmac.Equal(b, c.raw("", "")) || hmac.Equal(b, c.secret()) || hmac.Equal(b, c.raw(c.r.URL.Path, c.method))
	}
	return false
}

// forgery is verify_authenticity_token: why the request is refused, or "".
func (c *uplCall) forgery() string {
	base := "http://" + uplHost(c.r)
	switch o := c.r.Header.Get("Origin"); {
	case c.method == http.MethodGet || c.method == http.MethodHead:
	case o != "" && o != base:
		return fmt.Sprintf("HTTP Origin header (%s) didn't match request.base_url (%s)", o, base)
	case !c.valid(c.param("authenticity_token")) && !c.valid(c.r.Header.Get("X-CSRF-Token")):
		return "Can't verify CSRF token authenticity."
	}
	return ""
}

// send answers as Rails' middleware does: its default headers, the session
// cookie if the session was read, a weak ETag for a 200 to a GET.
func (c *uplCall) send(status int, ctype, body string) {
	h := c.w.Header()
	for _, kv := range [][2]string{{"X-Frame-Options", "SAMEORIGIN"}, {"X-XSS-Protection", "0"}, {"X-Content-Type-Options", "nosniff"},
		{"X-Download-Options", "noopen"}, {"X-Permitted-Cross-Domain-Policies", "none"}, {"Referrer-Policy", "strict-origin-when-cross-origin"},
		{"Content-Type", ctype}, {"X-Request-Id", cmp.Or(c.r.Header.Get("X-Request-Id"), uplUUID())},
		{"X-Runtime", fmt.Sprintf("%.6f", time.Since(c.start).Seconds())}} {
		h.Set(kv[0], kv[1])
	}
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-cache")
	}
	if c.sess != nil {
		h.Set("Set-Cookie", uplCookie+"="+c.a.seal(c.sess)+"; path=/; HttpOnly; SameSite=Lax")
	}
	if status == http.StatusOK && c.method == http.MethodGet {
		etag := fmt.Sprintf(`W/"%x"`, md5.Sum([]byte(body)))
		h.Set("ETag", etag)
		h.Set("Cache-Control", "max-age=0, private, must-revalidate")
		if c.r.Header.Get("If-None-Match") == etag {
			h.Del("Content-Type")
			status, body = http.StatusNotModified, ""
		}
	}
	c.w.WriteHeader(status)
	_, _ = io.WriteString(c.w, body)
}

// redirect is redirect_to: an absolute Location, and Rails' little body.
func (c *uplCall) redirect(status int, to string) {
	if strings.HasPrefix(to, "/") {
		to = "http://" + uplHost(c.r) + to
	}
	c.w.Header().Set("Location", to)
	c.send(status, "text/html; charset=utf-8", `<html><body>You are being <a href="`+uplEsc(to)+`">redirected</a>.</body></html>`)
}

// fail counts a refusal and answers as an exception raised does (the
// session not written): public/4xx.html, or ActionDispatch::
// PublicExceptions' JSON to a JSON request.
func (c *uplCall) fail(status int, count, detail string) {
	c.a.Counts.Add(count, 1)
	c.sess = nil
	if strings.Contains(c.r.Header.Get("Accept"), "application/json") {
		c.send(status, "application/json; charset=utf-8", fmt.Sprintf(`{"status":%d,"error":%q}`, status, http.StatusText(status)))
		return
	}
	title := map[int]string{400: "The request was bad", 404: "The page you were looking for doesn't exist", 422: "The change you wanted was rejected"}[status]
	c.send(status, "text/html; charset=UTF-8", fmt.Sprintf(`<!DOCTYPE html>
<html><head><title>%s (%d)</title><meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body><div class="dialog"><div><h1>%[1]s.</h1></div><p>%[3]s</p></div>
<div id="root">error: %[2]d (%[4]s) %[5]s %[3]s</div></body></html>
`, title, status, uplEsc(detail), uplEsc(count), uplEsc(c.method+" "+c.r.URL.RequestURI())))
}

// notice sets flash[:notice] (or another key) for the next request.
func (c *uplCall) flash(key, msg string) {
	c.session().Flash = &uplFlash{Discard: []string{}, Flashes: map[string]string{key: msg}}
}

// formWith is form_with's markup: multipart when it has a file field, the
// _method of a form that is not a POST, and the form's own token.
func (c *uplCall) formWith(action, method string, multipart bool, inner string) string {
	mt, enc := "", ""
	if method != "post" {
		mt = `<input type="hidden" name="_method" value="` + method + `" autocomplete="off" />`
	}
	if multipart {
		enc = ` enctype="multipart/form-data"`
	}
	return fmt.Sprintf(`<form%s action="%s" accept-charset="UTF-8" method="post">%s<input type="hidden" name="authenticity_token" value="%s" autocomplete="off" />%s</form>`,
		enc, uplEsc(action), mt, c.token(action, method), inner)
}

// buttonTo is button_to with a method: a form of its own.
func (c *uplCall) buttonTo(label, action, method string) string {
	return fmt.Sprintf(`<form class="button_to" method="post" action="%s"><input type="hidden" name="_method" value="%s" autocomplete="off" /><button type="submit">%s</button><input type="hidden" name="authenticity_token" value="%s" autocomplete="off" /></form>`,
		uplEsc(action), method, uplEsc(label), c.token(action, method))
}

// render renders a view in the application layout, which shows the flash
// (and so uses it up), the navigation and the sign-out button to a
// signed-in user, and loads the app's scripts.
func (c *uplCall) render(status int, title, alert, head, main string) {
	notice, nav := "", ""
	if f := c.session().Flash; f != nil {
		notice, alert, c.sess.Flash = f.Flashes["notice"], cmp.Or(alert, f.Flashes["alert"]), nil
	}
	if c.uid != 0 {
		nav = `    <nav><a href="/uploads">Uploads</a> <a href="/imports/new">New import</a> ` + uplEsc(c.user) + "@example.test " +
			c.buttonTo("Sign out", "/session", "delete") + "</nav>\n"
	}
	c.send(status, "text/html; charset=utf-8", fmt.Sprintf(`<!DOCTYPE html>
<html>
  <head><title>%s | Files</title><meta name="viewport" content="width=device-width,initial-scale=1">
    <meta name="csrf-param" content="authenticity_token" />
<meta name="csrf-token" content="%s" />%s
    <script>%s</script></head>
  <body>
%s    <p style="color: green" id="notice">%s</p><p style="color: red" id="alert">%s</p>
    <main>
%s
    </main>
    <div id="root"></div><script>%s</script>
  </body>
</html>
`, uplEsc(title), c.token("", ""), head, uplActiveStorageJS, nav, uplEsc(notice), uplEsc(alert), main, uplVisitJS))
}
