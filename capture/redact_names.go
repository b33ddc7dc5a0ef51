package capture

// The one rule that says which names hold secrets, for every position a
// name can have: a header, a query or form parameter, a multipart field, a
// JSON key at any depth (in a body, a WebSocket message, an SSE event, a
// query value). A name is cut into parts at anything that is not a letter
// or a digit, at camelCase humps (apiKey, CSRFToken), and between letters
// and digits, and the parts are matched whole and without case: "author"
// is not "auth" and "monkey" has no part "key", while X-Api-Key, apiKey,
// api_key and Apikey are the same name.

// strength says how surely a name names a secret.
type strength uint8

const (
	// notSecret: the value is kept.
	notSecret strength = iota
	// weakSecret: a word that also names harmless things (key, session,
	// code): its value is replaced where it was found, but replaced where it
	// is echoed only when it looks like a credential (see credentialLike),
	// so that {"key":"created_at"} does not blank out every created_at.
	weakSecret
	// sessionSecret is a weak one named by session (X-Session, session_id,
	// sessionId), whose value is kept when it is a UUID no answer gave (see
	// clientMade).
	sessionSecret
	// strongSecret: its value is replaced wherever it appears.
	strongSecret
)

// position is where a name was found.
type position uint8

const (
	inHeader position = iota
	inJSON
	// inForm is a query or fragment parameter, a URL-encoded or multipart
	// form field, or a field of a form-like WebSocket message.
	inForm
)

// maxParts is how many of a name's last parts are read: the last part and
// the few that qualify it decide.
const maxParts = 8

// maxPart is the longest part compared whole; a longer one is matched by
// its end only.
const maxPart = 32

// nameByte is a string or a byte slice, so that JSON keys are classified
// in place, without a copy.
type nameByte interface{ ~string | ~[]byte }

// secretName says whether name names a secret in position pos.
//
// The rule: the name's last part is a secret word (password, passwd, pwd,
// pass, passphrase, passcode, secret, token, credential, otp, jwt, bearer,
// cookie, authorization, a compound such as apikey or sessionid, a part
// ending in token, password, passwd, secret or apikey, and key after api,
// access, private, session, client and the like: strong; key, auth,
// session, sig, signature: weak), or a secret word is followed only by
// parts that say it is still its value (session_id, password_confirmation,
// password2, api_key_id, otp_code), except a field named session alone
// (not a header: X-Session is one); a session name's UUID that no answer
// gave is kept (sessionSecret).
// Besides, refresh and access are secret
// (weak) as a whole name outside headers (Simple JWT's {"access": …,
// "refresh": …}; the Refresh header is not), and code as a whole query or
// form parameter name (an OAuth authorization code), never in JSON
// ({"code": "E42"} is an error code) nor in headers.
func secretName[T nameByte](name T, pos position) strength {
	switch {
	case pos == inForm && eqFold(name, "code"):
		return weakSecret
	case pos != inHeader && (eqFold(name, "refresh") || eqFold(name, "access")):
		return weakSecret
	}
	// Parts are read from the end: the last one decides, unless it only
	// says which value of the one before it is meant.
	var buf, prev [maxPart]byte
	end := len(name)
	for k := range maxParts {
		from, to := lastPart(name, end)
		if from < 0 {
			return notSecret
		}
		p := lower(&buf, name[from:to])
		if valueSuffix(p) {
			end = from
			continue
		}
		if string(p) == "code" {
			if f, t := lastPart(name, from); f >= 0 && codeOwner(lower(&prev, name[f:t])) {
				end = from
				continue
			}
		}
		st := secretWord(p)
		if string(p) == "session" {
			if f, _ := lastPart(name, from); f < 0 && k == 0 && pos != inHeader {
				// A field named session alone is an identifier more
				// often than a secret (Jupyter's message header,
				// LiveView's join); its id, key or token is one.
				return notSecret
			}
			return sessionSecret
		}
		if st == weakSecret && string(p) == "key" {
			if f, t := lastPart(name, from); f >= 0 && keyOwner(lower(&prev, name[f:t])) {
				st = strongSecret // api_key, private_key: a PEM key has spaces, and is a secret all the same
			}
		}
		return st
	}
	return notSecret
}

// lastPart returns the bounds of the last part of name[:end], or -1.
func lastPart[T nameByte](name T, end int) (from, to int) {
	for end > 0 && !alnum(name[end-1]) {
		end--
	}
	if end == 0 {
		return -1, -1
	}
	from = end - 1
	for from > 0 && alnum(name[from-1]) && !boundary(name, from) {
		from--
	}
	return from, end
}

// secretWord says whether a lower-case part is a word for a secret.
func secretWord(p []byte) strength {
	switch string(p) {
	case "password", "passwd", "pwd", "pass", "passphrase", "passcode", "secret", "token", "credential", "credentials",
		"otp", "totp", "hotp", "passkey", "jwt", "bearer", "cookie", "authorization", "passwords", "secrets", "tokens", "cookies",
		"apikey", "accesskey", "privatekey", "secretkey", "signingkey", "sessionkey", "sessionid", "authkey":
		return strongSecret
	case "key", "auth", "session", "sig", "signature":
		return weakSecret
	}
	for _, end := range [...]string{"token", "password", "passwd", "secret", "apikey"} {
		if len(p) > len(end) && string(p[len(p)-len(end):]) == end {
			return strongSecret // csrfmiddlewaretoken, authtoken, newpassword, clientsecret, xapikey
		}
	}
	return notSecret
}

// valueSuffix says whether a lower-case part, after a secret word, still
// names its value: session_id, password_confirmation, password2,
// id_token_hint.
func valueSuffix(p []byte) bool {
	switch string(p) {
	case "id", "value", "val", "hash", "digest", "hint", "confirm", "confirmation", "again", "repeat", "repeated",
		"verify", "new", "old", "current", "b64", "base64", "hex", "enc", "encrypted", "raw", "plain", "str", "string":
		return true
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(p) > 0
}

// codeOwner says whether a lower-case part makes a following "code" a
// secret: otp_code, auth_code, authorization_code (but not zip_code,
// country_code, error_code).
func codeOwner(p []byte) bool {
	switch string(p) {
	case "otp", "totp", "auth", "authorization":
		return true
	}
	return false
}

// keyOwner says whether a lower-case part makes a following "key" surely
// a secret's name.
func keyOwner(p []byte) bool {
	switch string(p) {
	case "api", "access", "private", "secret", "signing", "session", "client", "auth", "encryption", "master",
		"app", "consumer", "license", "subscription", "sas", "account", "storage":
		return true
	}
	return false
}

// clientMade says whether value, found under a session name, is a
// session id the client made itself rather than a credential: a UUID
// (Jupyter's crypto.randomUUID() session_id) that is not already a secret
// of the session, which an answer would have made it. It is kept, so that
// replay makes each user its own, as it does for every UUID a client
// makes; redacted, all users would share one.
func clientMade(value string) bool {
	if len(value) != 36 {
		return false
	}
	for i := range len(value) {
		c := value[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isDigit(c) && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
				return false
			}
		}
	}
	return true
}

// credentialLike says whether a value found under a weak name looks like
// a credential rather than a word, so that it is replaced wherever it is
// echoed: no spaces, and a digit or at least 20 bytes ({"key":
// "Content-Type"} is a word; an API key, a session id or a code is not).
func credentialLike(v string) bool {
	if len(v) < minEchoLength {
		return false
	}
	digit := false
	for i := range len(v) {
		switch c := v[i]; {
		case c <= ' ':
			return false
		case '0' <= c && c <= '9':
			digit = true
		}
	}
	return digit || len(v) >= 20
}

// lower writes p lower-cased into buf and returns it; a part longer than
// buf keeps its end, which is all a word longer than buf can match.
func lower[T nameByte](buf *[maxPart]byte, p T) []byte {
	if len(p) > maxPart {
		p = p[len(p)-maxPart:]
	}
	for i := range len(p) {
		c := p[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(p)]
}

// boundary says whether a new part starts at name[i], given that name[i-1]
// is alphanumeric.
func boundary[T nameByte](name T, i int) bool {
	c, p := name[i], name[i-1]
	switch {
	case !alnum(c):
		return true
	case isDigit(c) != isDigit(p):
		return true
	case isUpper(c) && !isUpper(p):
		return true // apiKey
	case isUpper(c) && isUpper(p) && i+1 < len(name) && isLowerByte(name[i+1]):
		return true // CSRFToken
	}
	return false
}

// alnum says whether c belongs to a part: an ASCII letter or digit, or a
// byte of a non-ASCII letter (which matches no word).
func alnum(c byte) bool { return isDigit(c) || isUpper(c) || isLowerByte(c) || c >= 0x80 }

func isDigit(c byte) bool     { return '0' <= c && c <= '9' }
func isUpper(c byte) bool     { return 'A' <= c && c <= 'Z' }
func isLowerByte(c byte) bool { return 'a' <= c && c <= 'z' }

// eqFold reports whether name is lit, ASCII case ignored; lit is lower case.
func eqFold[T nameByte](name T, lit string) bool {
	if len(name) != len(lit) {
		return false
	}
	for i := range len(lit) {
		c := name[i]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		if c != lit[i] {
			return false
		}
	}
	return true
}

// placeholderName returns name with every byte replay does not take in a
// placeholder's name (letters, digits and _.[]-) made '_'.
func placeholderName(name string) string {
	ok := func(c byte) bool {
		return isDigit(c) || isUpper(c) || isLowerByte(c) || c == '_' || c == '.' || c == '[' || c == ']' || c == '-'
	}
	for i := range len(name) {
		if !ok(name[i]) {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if !ok(b[j]) {
					b[j] = '_'
				}
			}
			return string(b)
		}
	}
	return name
}
