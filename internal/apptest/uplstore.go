package apptest

import (
	"cmp"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// uplMarshalInt is Marshal.dump of a non-negative Integer: the version
// 4.8, 'i' and the packed fixnum.
func uplMarshalInt(n int) []byte {
	b := []byte{4, 8, 'i'}
	switch {
	case n == 0:
		return append(b, 0)
	case n < 123:
		return append(b, byte(n+5))
	}
	var le []byte
	for v := n; v > 0; v >>= 8 {
		le = append(le, byte(v))
	}
	return append(append(b, byte(len(le))), le...)
}

// uplUnmarshalInt reads what uplMarshalInt writes, and nothing else.
func uplUnmarshalInt(b []byte) (int, bool) {
	if len(b) < 4 || b[0] != 4 || b[1] != 8 || b[2] != 'i' {
		return 0, false
	}
	switch c := b[3]; {
	case c == 0 && len(b) == 4:
		return 0, true
	case c > 5 && c < 128 && len(b) == 4:
		return int(c) - 5, true
	case c >= 1 && c <= 4 && len(b) == 4+int(c):
		n := 0
		for i := int(c) - 1; i >= 0; i-- {
			n = n<<8 | int(b[4+i])
		}
		return n, n >= 123
	}
	return 0, false
}

func uplSHA1Hex(key []byte, data string) string {
	m := hmac.New(sha1.New, key)
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

// signedID is ActiveStorage::Blob#signed_id: ActiveStorage.verifier's
// generate(id, purpose: :blob_id), data--HMAC-SHA1 hex digest.
func (a *Uploads) signedID(id int) string {
	var m uplEnvelope
	m.Rails.Message, m.Rails.Pur = base64.StdEncoding.EncodeToString(uplMarshalInt(id)), "blob_id"
	env, _ := json.Marshal(m)
	data := base64.StdEncoding.EncodeToString(env)
	return data + "--" + uplSHA1Hex(a.verifier, data)
}

// blobID is ActiveStorage::Blob.find_signed's verify: the id, or false.
func (a *Uploads) blobID(sid string) (int, bool) {
	var m uplEnvelope
	parts := strings.Split(sid, "--")
	if len(parts) != 2 || parts[0] == "" || !hmac.Equal([]byte(parts[1]), []byte(uplSHA1Hex(a.verifier, parts[0]))) {
		return 0, false
	}
	env, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(env, &m) != nil || m.Rails.Pur != "blob_id" {
		return 0, false
	}
	if m.Rails.Exp != nil {
		if t, err := time.Parse(time.RFC3339Nano, *m.Rails.Exp); err != nil || time.Now().After(t) {
			return 0, false
		}
	}
	raw, err := base64.StdEncoding.DecodeString(m.Rails.Message)
	if err != nil {
		return 0, false
	}
	return uplUnmarshalInt(raw)
}

// --- the store: AWS Signature Version 4, query-string authentication ---

// uplAWSEscape is SigV4's URI encoding: all but unreserved characters.
func uplAWSEscape(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func uplHMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// uplSign is SigV4 of a presigned request: its canonical request (the
// query without the signature, the signed headers' values, an unsigned
// payload), the string to sign and the signature.
func uplSign(method, path string, q url.Values, headers map[string]string, date time.Time) (canonical, toSign, sig string) {
	var qs, hs []string
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if k == "X-Amz-Signature" {
			continue
		}
		for _, v := range slices.Sorted(slices.Values(q[k])) {
			qs = append(qs, uplAWSEscape(k)+"="+uplAWSEscape(v))
		}
	}
	names := slices.Sorted(maps.Keys(headers))
	for _, k := range names {
		hs = append(hs, k+":"+strings.Join(strings.Fields(headers[k]), " ")+"\n")
	}
	segs := strings.Split(path, "/")
	for i := range segs {
		segs[i] = uplAWSEscape(segs[i])
	}
	canonical = strings.Join([]string{method, strings.Join(segs, "/"), strings.Join(qs, "&"), strings.Join(hs, ""),
		strings.Join(names, ";"), "UNSIGNED-PAYLOAD"}, "\n")
	day := date.UTC().Format("20060102")
	scope := day + "/" + uplRegion + "/s3/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign = "AWS4-HMAC-SHA256\n" + date.UTC().Format(uplAmzDate) + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	k := uplHMAC(uplHMAC(uplHMAC(uplHMAC([]byte("AWS4"+uplSecretKey), day), uplRegion), "s3"), "aws4_request")
	return canonical, toSign, hex.EncodeToString(uplHMAC(k, toSign))
}

// presign is Aws::S3::Object#presigned_url as aws-sdk-s3 writes it, path
// style on the store's endpoint: the request's own parameters (extra, in
// order) first, then the X-Amz- ones, the signature last. headers are the
// signed ones but host, by lowercase name.
func (a *Uploads) presign(method, host, key string, headers map[string]string, extra [][2]string, now time.Time) string {
	path := "/store/" + uplBucket + "/" + key
	signed := map[string]string{"host": host}
	maps.Copy(signed, headers)
	q := url.Values{}
	var parts []string
	for _, kv := range extra {
		q.Set(kv[0], kv[1])
		parts = append(parts, uplAWSEscape(kv[0])+"="+uplAWSEscape(kv[1]))
	}
	amz := [][2]string{{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
		{"X-Amz-Credential", uplAccessKey + "/" + now.UTC().Format("20060102") + "/" + uplRegion + "/s3/aws4_request"},
		{"X-Amz-Date", now.UTC().Format(uplAmzDate)}, {"X-Amz-Expires", strconv.Itoa(uplExpires)},
		{"X-Amz-SignedHeaders", strings.Join(slices.Sorted(maps.Keys(signed)), ";")}}
	for _, kv := range amz {
		q.Set(kv[0], kv[1])
		parts = append(parts, kv[0]+"="+uplAWSEscape(kv[1]))
	}
	_, _, sig := uplSign(method, path, q, signed, now)
	return "http://" + host + path + "?" + strings.Join(append(parts, "X-Amz-Signature="+sig), "&")
}

// s3Error answers an S3 error document.
func (a *Uploads) s3Error(w http.ResponseWriter, status int, count, code, msg string, more ...[2]string) {
	a.Counts.Add(count, 1)
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Error><Code>%s</Code><Message>%s</Message>", code, html.EscapeString(msg))
	for _, kv := range more {
		fmt.Fprintf(&b, "<%s>%s</%[1]s>", kv[0], html.EscapeString(kv[1]))
	}
	rid := strings.ToUpper(hex.EncodeToString(uplRandom(8)))
	fmt.Fprintf(&b, "<RequestId>%s</RequestId><HostId>%s</HostId></Error>", rid, base64.StdEncoding.EncodeToString(uplRandom(48)))
	uplS3Headers(w, rid)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, b.String())
}

func uplS3Headers(w http.ResponseWriter, rid string) {
	h := w.Header()
	h.Set("x-amz-request-id", rid)
	h.Set("x-amz-id-2", base64.StdEncoding.EncodeToString(uplRandom(48)))
	h.Set("Server", "AmazonS3")
}

// spend marks a presigned URL's signature used until it expires, and
// forgets now and then those that have expired, which the expiry refuses.
func (a *Uploads) spend(sig string, until time.Time) {
	if a.used[sig] = until; len(a.used)%1024 == 0 {
		now := time.Now()
		maps.DeleteFunc(a.used, func(_ string, t time.Time) bool { return now.After(t) })
	}
}

// store is the S3-compatible service: presigned PUT and GET of objects.
func (a *Uploads) store(w http.ResponseWriter, r *http.Request) {
	var body []byte
	var readErr error
	if r.Method == http.MethodPut {
		body, readErr = io.ReadAll(io.LimitReader(r.Body, 10*uplMaxBody+1))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/store/"), "/")
	q := r.URL.Query()
	switch {
	case bucket != uplBucket:
		a.s3Error(w, http.StatusNotFound, "404 no such key", "NoSuchBucket", "The specified bucket does not exist", [2]string{"BucketName", bucket})
		return
	case r.Method != http.MethodPut && r.Method != http.MethodGet && r.Method != http.MethodHead:
		a.s3Error(w, http.StatusMethodNotAllowed, "405 store", "MethodNotAllowed", "The specified method is not allowed against this resource.",
			[2]string{"Method", r.Method}, [2]string{"ResourceType", "OBJECT"})
		return
	case q.Get("X-Amz-Signature") == "":
		a.s3Error(w, http.StatusForbidden, "403 presigned", "AccessDenied", "Access Denied")
		return
	}
	cred := strings.Split(q.Get("X-Amz-Credential"), "/")
	date, derr := time.Parse(uplAmzDate, q.Get("X-Amz-Date"))
	expires, eerr := strconv.Atoi(q.Get("X-Amz-Expires"))
	signedNames := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	switch {
	case q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || len(cred) != 5 || derr != nil || eerr != nil || expires < 1 || expires > 604800 ||
		!slices.Contains(signedNames, "host") || cred[1] != date.Format("20060102") || cred[2] != uplRegion || cred[3] != "s3" || cred[4] != "aws4_request":
		a.s3Error(w, http.StatusForbidden, "403 presigned", "AccessDenied", "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		return
	case cred[0] != uplAccessKey:
		a.s3Error(w, http.StatusForbidden, "403 presigned", "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
			[2]string{"AWSAccessKeyId", cred[0]})
		return
	case now.After(date.Add(time.Duration(expires) * time.Second)):
		a.s3Error(w, http.StatusForbidden, "403 presigned", "AccessDenied", "Request has expired", [2]string{"X-Amz-Expires", strconv.Itoa(expires)},
			[2]string{"Expires", date.Add(time.Duration(expires) * time.Second).UTC().Format(time.RFC3339)}, [2]string{"ServerTime", now.UTC().Format(time.RFC3339)})
		return
	case date.After(now.Add(15 * time.Minute)):
		a.s3Error(w, http.StatusForbidden, "403 presigned", "AccessDenied", "Request is not valid yet")
		return
	}
	headers := map[string]string{}
	for _, n := range signedNames {
		headers[n] = r.Header.Get(n)
	}
	headers["host"] = uplHost(r)
	canonical, toSign, sig := uplSign(r.Method, r.URL.Path, q, headers, date)
	given := q.Get("X-Amz-Signature")
	switch {
	case !hmac.Equal([]byte(given), []byte(sig)):
		a.s3Error(w, http.StatusForbidden, "403 presigned", "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your key and signing method.",
			[2]string{"AWSAccessKeyId", uplAccessKey}, [2]string{"StringToSign", toSign}, [2]string{"SignatureProvided", given},
			[2]string{"CanonicalRequest", canonical})
		return
	case !a.used[sig].IsZero():
		a.s3Error(w, http.StatusForbidden, "403 presigned", "AccessDenied", "Request has already been used")
		return
	}
	rid := strings.ToUpper(hex.EncodeToString(uplRandom(8)))
	if r.Method == http.MethodPut {
		sum := md5.Sum(body)
		switch {
		case readErr != nil || len(body) > 10*uplMaxBody:
			a.s3Error(w, http.StatusBadRequest, "400 bad digest", "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header")
		case r.Header.Get("Content-MD5") == "":
			a.s3Error(w, http.StatusBadRequest, "400 bad digest", "InvalidRequest", "Missing required header for this request: Content-MD5")
		case r.Header.Get("Content-MD5") != base64.StdEncoding.EncodeToString(sum[:]):
			a.s3Error(w, http.StatusBadRequest, "400 bad digest", "BadDigest", "The Content-MD5 you specified did not match what we received.",
				[2]string{"ExpectedDigest", r.Header.Get("Content-MD5")}, [2]string{"CalculatedDigest", base64.StdEncoding.EncodeToString(sum[:])})
		default:
			a.spend(sig, date.Add(time.Duration(expires)*time.Second))
			a.objects[key] = &uplObject{data: body, contentType: cmp.Or(r.Header.Get("Content-Type"), "binary/octet-stream"), modified: now}
			a.Counts.Add("objects stored", 1)
			uplS3Headers(w, rid)
			w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sum))
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
		}
		return
	}
	obj := a.objects[key]
	if obj == nil {
		a.s3Error(w, http.StatusNotFound, "404 no such key", "NoSuchKey", "The specified key does not exist.", [2]string{"Key", key})
		return
	}
	a.spend(sig, date.Add(time.Duration(expires)*time.Second))
	a.Counts.Add("downloads", 1)
	uplS3Headers(w, rid)
	h := w.Header()
	h.Set("Last-Modified", obj.modified.UTC().Format(http.TimeFormat))
	h.Set("ETag", fmt.Sprintf(`"%x"`, md5.Sum(obj.data)))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", cmp.Or(q.Get("response-content-type"), obj.contentType))
	if d := q.Get("response-content-disposition"); d != "" {
		h.Set("Content-Disposition", d)
	}
	h.Set("Content-Length", strconv.Itoa(len(obj.data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(obj.data)
	}
}
