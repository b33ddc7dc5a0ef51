package demo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// keys derives the backend's signed values from one secret. It is safe for
// concurrent use.
type keys struct {
	secret []byte
	epoch  time.Time // the shared origin of import sequence numbers
	proc   uint64    // this process's index among procs
	procs  uint64
	seq    atomic.Uint64 // last import sequence number handed out
}

func (k *keys) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, k.secret)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// newSession returns a signed session cookie value for user:
// base64(user|nonce|issued) "." base64(mac).
func (k *keys) newSession(user string) (string, error) {
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", err
	}
	payload := user + "|" + hex.EncodeToString(nonce[:]) + "|" + strconv.FormatInt(time.Now().Unix(), 10)
	p := base64.RawURLEncoding.EncodeToString([]byte(payload))
	return p + "." + base64.RawURLEncoding.EncodeToString(k.mac("session", p)[:18]), nil
}

var errBadSession = errors.New("bad session")

// session checks a session cookie value and returns its user.
func (k *keys) session(v string) (user string, err error) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return "", errBadSession
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.mac("session", p)[:18]) {
		return "", errBadSession
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return "", errBadSession
	}
	user, _, _ = strings.Cut(string(raw), "|")
	return user, nil
}

// csrf returns the CSRF token that belongs to a session: a client must echo
// it in X-CSRFToken, and a token recorded for another session will not do.
func (k *keys) csrf(session string) string {
	return hex.EncodeToString(k.mac("csrf", session)[:16])
}

// Import ids are numbers below 2^53 (safe in any JSON parser):
// sequence<<16 | MAC16(session, kind, sequence). The sequence counts
// milliseconds since the shared epoch, times the number of processes, plus
// this process's index, so processes never hand out the same one and the
// sequence tells when the import started.
const (
	macBits       = 16
	importIDFloor = 1 << 24 // catalogue ids stay far below
)

// nextSeq returns a new import sequence number.
func (k *keys) nextSeq(now time.Time) uint64 {
	want := uint64(max(now.Sub(k.epoch).Milliseconds(), 0))*k.procs + k.proc
	for {
		last := k.seq.Load()
		next := want
		if next <= last {
			next = last + k.procs
		}
		if k.seq.CompareAndSwap(last, next) {
			return next
		}
	}
}

// seqTime returns when an import with sequence number seq started (or a
// moment after, when a process started more than one import a millisecond).
func (k *keys) seqTime(seq uint64) time.Time {
	return k.epoch.Add(time.Duration(seq/k.procs) * time.Millisecond)
}

func (k *keys) importID(session, kind string, seq uint64) uint64 {
	m := k.mac("import", session, kind, strconv.FormatUint(seq, 10))
	return importIDFloor + (seq<<macBits | uint64(binary.BigEndian.Uint16(m)))
}

// importSeq returns the sequence number in id if id was made for session
// and kind.
func (k *keys) importSeq(session, kind string, id uint64) (uint64, bool) {
	if id < importIDFloor {
		return 0, false
	}
	seq := (id - importIDFloor) >> macBits
	if seq >= 1<<36 {
		return 0, false
	}
	return seq, k.importID(session, kind, seq) == id
}
