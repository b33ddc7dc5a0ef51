package apptest

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// signIn is SessionsController#new, and #create: a refused sign-in is sent
// back to the form with an alert; an accepted one resets the session and is
// sent to where signing in was asked for, else the uploads.
func (c *uplCall) signIn() {
	if c.action == "sessions#create" {
		email := strings.ToLower(strings.TrimSpace(c.param("email_address")))
		if name, ok := strings.CutSuffix(email, "@example.test"); ok && name != "" && c.param("password") == "pw-"+name {
			back := c.sess.ReturnTo
			if c.reset(); c.a.users[name] == 0 {
				c.a.lastUser++
				c.a.users[name], c.a.names[c.a.lastUser] = c.a.lastUser, name
			}
			c.uid, c.user, c.sess.UserID = c.a.users[name], name, c.a.users[name]
			c.a.Counts.Add("sessions", 1)
			c.redirect(http.StatusFound, cmp.Or(back, "/uploads"))
			return
		}
		c.a.Counts.Add("login refused", 1)
		c.flash("alert", "Try another email address or password.")
		c.redirect(http.StatusFound, "/session/new")
		return
	}
	head := ""
	if c.sess.ReturnTo != "" {
		head = "\n" + `<meta name="return-to" content="` + uplEsc(c.sess.ReturnTo) + `" />`
	}
	c.render(http.StatusOK, "Sign in", "", head, "<h1>Sign in</h1>\n"+c.formWith("/session", "post", false,
		`<input required="required" autofocus="autofocus" autocomplete="username" placeholder="Enter your email address" type="email" name="email_address" id="email_address" /><br>
<input required="required" autocomplete="current-password" placeholder="Enter your password" maxlength="72" type="password" name="password" id="password" /><br>
<input type="submit" name="commit" value="Sign in" data-disable-with="Sign in" />`))
}

func (c *uplCall) signOut() {
	c.reset()
	c.a.Counts.Add("logouts", 1)
	c.redirect(http.StatusSeeOther, "/session/new")
}

// uploadList is UploadsController#index: the user's uploads and the new
// upload form, its file field a direct upload one.
func (c *uplCall) uploadList() { c.showUploads(http.StatusOK, "") }

func (c *uplCall) showUploads(status int, alert string) {
	var b strings.Builder
	b.WriteString("<h1>Uploads</h1>\n<ul id=\"uploads\">\n")
	for _, id := range slices.Sorted(maps.Keys(c.a.uploads)) {
		if u := c.a.uploads[id]; u.owner == c.uid {
			bl := c.a.blobs[u.blob]
			fmt.Fprintf(&b, "<li id=\"upload_%d\"><a href=\"/uploads/%d\">%s</a> (%d bytes)</li>\n", id, id, uplEsc(bl.filename), bl.byteSize)
		}
	}
	b.WriteString("</ul>\n<h2>New upload</h2>\n")
	b.WriteString(c.formWith("/uploads", "post", true, fmt.Sprintf(`
  <div><label for="upload_file">File</label> <input data-direct-upload-url="http://%s/rails/active_storage/direct_uploads" type="file" name="upload[file]" id="upload_file" /></div>
  <input type="submit" name="commit" value="Create Upload" data-disable-with="Create Upload" />
`, uplEsc(uplHost(c.r)))))
	c.render(status, "Uploads", alert, "", b.String())
}

// uploadCreate is UploadsController#create: upload[file] is a signed blob
// id, found as has_one_attached finds it, and checked further: the user's
// blob, stored whole, not attached yet.
func (c *uplCall) uploadCreate() {
	sid, why := c.param("upload[file]"), ""
	id, ok := c.a.blobID(sid)
	b := c.a.blobs[id]
	var obj *uplObject
	if b != nil {
		obj = c.a.objects[b.key]
	}
	switch {
	case c.files["upload[file]"] != nil:
		why = "File must be uploaded directly"
	case sid == "":
		why = "File can't be blank"
	case !ok:
		why = "File is invalid (ActiveSupport::MessageVerifier::InvalidSignature)"
	case b == nil:
		why = "File is invalid (no such blob)"
	case b.owner != c.uid:
		why = "File is invalid (another user's blob)"
	case obj == nil || int64(len(obj.data)) != b.byteSize:
		why = "File has not been uploaded"
	case b.attached != 0:
		why = "File is attached already"
	}
	if why != "" {
		c.a.Counts.Add("bad signed_id", 1)
		c.showUploads(http.StatusUnprocessableEntity, why)
		return
	}
	c.a.lastUpload++
	c.a.uploads[c.a.lastUpload] = &uplUpload{owner: c.uid, blob: id}
	b.attached = c.a.lastUpload
	c.a.Counts.Add("uploads attached", 1)
	c.flash("notice", "Upload was successfully created.")
	c.redirect(http.StatusFound, "/uploads/"+strconv.Itoa(c.a.lastUpload))
}

// notFound is the 404 that Current.user.uploads.find(id) (or imports)
// raises: another user's record, or none.
func (c *uplCall) notFound(foreign bool) {
	if foreign {
		c.fail(http.StatusNotFound, "404 foreign", "ActiveRecord::RecordNotFound")
		return
	}
	c.fail(http.StatusNotFound, "404 missing", "ActiveRecord::RecordNotFound")
}

func (c *uplCall) uploadShow() {
	id, _ := strconv.Atoi(c.params[0])
	u := c.a.uploads[id]
	if u == nil || u.owner != c.uid {
		c.notFound(u != nil)
		return
	}
	b := c.a.blobs[u.blob]
	link := "/rails/active_storage/blobs/redirect/" + url.PathEscape(c.a.signedID(u.blob)) + "/" + url.PathEscape(b.filename)
	c.render(http.StatusOK, b.filename, "", "", fmt.Sprintf(`<h1 id="filename">%s</h1>
<p>%s, <span id="byte-size">%d</span> bytes, checksum <code>%s</code></p>
<p><a id="download" href="%s">Download %[1]s</a></p>
<p><a href="/uploads">Back to uploads</a></p>`, uplEsc(b.filename), uplEsc(b.contentType), b.byteSize, uplEsc(b.checksum), uplEsc(link)))
}

// importNew is ImportsController#new: a multipart form.
func (c *uplCall) importNew() { c.showImportForm(http.StatusOK, "") }

func (c *uplCall) showImportForm(status int, alert string) {
	c.render(status, "New import", alert, "", "<h1>New import</h1>\n"+c.formWith("/imports", "post", true, `
  <div><label for="import_kind">Kind</label> <select name="import[kind]" id="import_kind"><option selected="selected" value="contacts">Contacts</option></select></div>
  <div><label for="import_file">File</label> <input accept="text/csv" type="file" name="import[file]" id="import_file" /></div>
  <input type="submit" name="commit" value="Create Import" data-disable-with="Create Import" />
`))
}

// importCreate is ImportsController#create: the CSV read at once, a
// header of name,email and a row for each contact.
func (c *uplCall) importCreate() {
	kind, f, why := c.param("import[kind]"), c.files["import[file]"], ""
	var rows [][]string
	switch {
	case kind != "contacts":
		why = "Kind is not included in the list"
	case f == nil || len(f.data) == 0:
		why = "File can't be blank"
	default:
		recs, err := csv.NewReader(bytes.NewReader(f.data)).ReadAll()
		switch {
		case err != nil:
			why = "File is not a CSV file: " + err.Error()
		case len(recs) < 2 || !slices.Equal(recs[0], []string{"name", "email"}):
			why = "File must have a name,email header and rows"
		}
		for _, rec := range recs[min(1, len(recs)):] {
			if why == "" && (len(rec) != 2 || rec[0] == "" || !strings.Contains(rec[1], "@")) {
				why = "File has a row without a name and an email"
			}
			rows = append(rows, rec)
		}
	}
	if why != "" {
		c.a.Counts.Add("422 invalid", 1)
		c.showImportForm(http.StatusUnprocessableEntity, why)
		return
	}
	c.a.lastIm++
	c.a.imports[c.a.lastIm] = &uplImport{owner: c.uid, kind: kind, filename: f.filename, rows: rows}
	c.a.Counts.Add("imports", 1)
	c.a.Counts.Add("rows imported", int64(len(rows)))
	c.flash("notice", "Import was successfully created.")
	c.redirect(http.StatusFound, "/imports/"+strconv.Itoa(c.a.lastIm))
}

func (c *uplCall) importShow() {
	id, _ := strconv.Atoi(c.params[0])
	im := c.a.imports[id]
	if im == nil || im.owner != c.uid {
		c.notFound(im != nil)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<h1>Import #%d: %s</h1>\n<p><span id=\"rows\">%d</span> rows imported from %s</p>\n<table id=\"contacts\">\n", id, uplEsc(im.kind), len(im.rows), uplEsc(im.filename))
	for _, row := range im.rows {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td></tr>\n", uplEsc(row[0]), uplEsc(row[1]))
	}
	c.render(http.StatusOK, "Import", "", "", b.String()+"</table>\n<p><a href=\"/uploads\">Back to uploads</a></p>")
}

// directUpload is ActiveStorage::DirectUploadsController#create, behind
// sign-in: the blob, and where and how to PUT its bytes.
func (c *uplCall) directUpload() {
	if c.blob == nil {
		c.fail(http.StatusBadRequest, "400 params", "ActionController::ParameterMissing: param is missing or the value is empty: blob")
		return
	}
	str := func(k string) string { s, _ := c.blob[k].(string); return s }
	size, ok := c.blob["byte_size"].(float64)
	sum, err := base64.StdEncoding.DecodeString(str("checksum"))
	if str("filename") == "" || str("content_type") == "" || !ok || size < 0 || size > 10*uplMaxBody || size != float64(int64(size)) || err != nil || len(sum) != 16 {
		c.fail(http.StatusUnprocessableEntity, "422 invalid", "ActiveRecord::RecordInvalid: Validation failed")
		return
	}
	c.a.lastBlob++
	b := &uplBlob{owner: c.uid, key: uplBase36(28), filename: str("filename"), contentType: str("content_type"), checksum: str("checksum"),
		byteSize: int64(size), created: time.Now().UTC()}
	c.a.blobs[c.a.lastBlob] = b
	c.a.Counts.Add("blobs created", 1)
	headers := map[string]string{"content-type": b.contentType, "content-md5": b.checksum}
	out := struct {
		ID           int               `json:"id"`
		Key          string            `json:"key"`
		Filename     string            `json:"filename"`
		ContentType  string            `json:"content_type"`
		Metadata     map[string]string `json:"metadata"`
		ServiceName  string            `json:"service_name"`
		ByteSize     int64             `json:"byte_size"`
		Checksum     string            `json:"checksum"`
		CreatedAt    string            `json:"created_at"`
		SignedID     string            `json:"signed_id"`
		DirectUpload struct {
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"direct_upload"`
	}{ID: c.a.lastBlob, Key: b.key, Filename: b.filename, ContentType: b.contentType, Metadata: map[string]string{}, ServiceName: "amazon",
		ByteSize: b.byteSize, Checksum: b.checksum, CreatedAt: b.created.Format(uplRailsTime), SignedID: c.a.signedID(c.a.lastBlob)}
	out.DirectUpload.URL = c.a.presign(http.MethodPut, uplHost(c.r), b.key, headers, nil, time.Now())
	out.DirectUpload.Headers = map[string]string{"Content-Type": b.contentType, "Content-MD5": b.checksum}
	body, _ := json.Marshal(out)
	c.send(http.StatusOK, "application/json; charset=utf-8", string(body))
}

// blobRedirect is ActiveStorage::Blobs::RedirectController#show, the blob
// found among the user's: 302 to a presigned GET of the store.
func (c *uplCall) blobRedirect() {
	id, ok := c.a.blobID(c.params[0])
	b := c.a.blobs[id]
	switch {
	case !ok || b == nil: // rescue_from InvalidSignature: head :not_found
		c.a.Counts.Add("bad signed_id", 1)
		c.send(http.StatusNotFound, "text/html", "")
		return
	case b.owner != c.uid:
		c.fail(http.StatusNotFound, "404 foreign", "ActiveRecord::RecordNotFound")
		return
	}
	name := strings.ReplaceAll(b.filename, `"`, `\"`)
	disp := `attachment; filename="` + name + `"; filename*=UTF-8''` + uplAWSEscape(b.filename)
	c.w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d, private", uplExpires))
	c.redirect(http.StatusFound, c.a.presign(http.MethodGet, uplHost(c.r), b.key, nil,
		[][2]string{{"response-content-disposition", disp}, {"response-content-type", b.contentType}}, time.Now()))
}

// uplActiveStorageJS does what @rails/activestorage's ujs does for a form
// with direct upload file fields: on submit it disables them, and for each
// file computes its MD5, POSTs the blob (XMLHttpRequest, JSON, the meta
// tag's X-CSRF-Token), PUTs the bytes to direct_upload.url with its
// headers, and puts the signed_id in a hidden input of the field's name;
// then it submits the form again by its button. A failure is a
// "direct-upload:error" event on the field.
const uplActiveStorageJS = `(() => {
  const md5 = bytes => {
    const K = [], R = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;
    const n = bytes.length, total = (((n + 8) >>> 6) + 1) * 64, buf = new Uint8Array(total);
    buf.set(bytes); buf[n] = 0x80;
    const dv = new DataView(buf.buffer);
    dv.setUint32(total - 8, (n * 8) >>> 0, true); dv.setUint32(total - 4, Math.floor(n / 0x20000000), true);
    let a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    for (let o = 0; o < total; o += 64) {
      let A = a0, B = b0, C = c0, D = d0;
      for (let i = 0; i < 64; i++) {
        let F, g;
        if (i < 16) { F = (B & C) | (~B & D); g = i; }
        else if (i < 32) { F = (D & B) | (~D & C); g = (5 * i + 1) % 16; }
        else if (i < 48) { F = B ^ C ^ D; g = (3 * i + 5) % 16; }
        else { F = C ^ (B | ~D); g = (7 * i) % 16; }
        F = (F + A + K[i] + dv.getUint32(o + 4 * g, true)) | 0;
        const s = R[(i >> 4) * 4 + (i & 3)];
        A = D; D = C; C = B; B = (B + ((F << s) | (F >>> (32 - s)))) | 0;
      }
      a0 = (a0 + A) | 0; b0 = (b0 + B) | 0; c0 = (c0 + C) | 0; d0 = (d0 + D) | 0;
    }
    const out = new DataView(new ArrayBuffer(16));
    [a0, b0, c0, d0].forEach((v, i) => out.setUint32(4 * i, v >>> 0, true));
    return btoa(String.fromCharCode(...new Uint8Array(out.buffer)));
  };
  const xhr = (method, url, headers, body) => new Promise((ok, no) => {
    const x = new XMLHttpRequest();
    x.open(method, url, true);
    for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
    x.onload = () => x.status >= 200 && x.status < 300 ? ok(x) : no(new Error(method + " " + new URL(url, location.href).pathname + ": " + x.status + " " + x.responseText.slice(0, 200)));
    x.onerror = () => no(new Error(method + " " + url + ": network error"));
    x.send(body);
  });
  const upload = async (input, file) => {
    const hidden = document.createElement("input");
    hidden.type = "hidden"; hidden.name = input.name;
    input.insertAdjacentElement("beforebegin", hidden);
    const checksum = md5(new Uint8Array(await file.arrayBuffer()));
    const rec = await xhr("POST", input.dataset.directUploadUrl, { "Content-Type": "application/json", "Accept": "application/json",
      "X-Requested-With": "XMLHttpRequest", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content },
      JSON.stringify({ blob: { filename: file.name, content_type: file.type || "application/octet-stream", byte_size: file.size, checksum } }));
    const blob = JSON.parse(rec.responseText);
    await xhr("PUT", blob.direct_upload.url, blob.direct_upload.headers, file.slice());
    hidden.value = blob.signed_id;
  };
  const buttons = new WeakMap();
  document.addEventListener("click", e => {
    const b = e.target.closest && e.target.closest("input[type=submit], button[type=submit]");
    if (b && b.form) buttons.set(b.form, b);
  }, true);
  document.addEventListener("submit", e => {
    const form = e.target;
    if (form.hasAttribute("data-direct-uploads-processing")) return e.preventDefault();
    const inputs = [...form.querySelectorAll("input[type=file][data-direct-upload-url]:not([disabled])")].filter(i => i.files.length);
    if (!inputs.length) return;
    e.preventDefault();
    form.setAttribute("data-direct-uploads-processing", "");
    inputs.forEach(i => { i.disabled = true; });
    (async () => { for (const i of inputs) for (const f of i.files) await upload(i, f); })().then(() => {
      form.removeAttribute("data-direct-uploads-processing");
      const b = buttons.get(form) || form.querySelector("input[type=submit], button[type=submit]");
      b.disabled = false; b.click();
    }, err => {
      form.removeAttribute("data-direct-uploads-processing");
      inputs.forEach(i => { i.disabled = false; });
      inputs[0].dispatchEvent(new CustomEvent("direct-upload:error", { bubbles: true, detail: { error: err.message } }));
    });
  }, true);
})();`
