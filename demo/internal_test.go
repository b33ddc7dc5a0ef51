package demo

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := newLimiter(2, 3) // 2 a second, bursts of 3
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		at    time.Duration
		ok    bool
		retry time.Duration
	}{
		{0, true, 0},
		{0, true, 0},
		{0, true, 0},
		{0, false, 500 * time.Millisecond},
		{250 * time.Millisecond, false, 250 * time.Millisecond},
		{500 * time.Millisecond, true, 0},
		{500 * time.Millisecond, false, 500 * time.Millisecond},
		{10 * time.Second, true, 0}, // refilled to the burst, not beyond
		{10 * time.Second, true, 0},
		{10 * time.Second, true, 0},
		{10 * time.Second, false, 500 * time.Millisecond},
	} {
		ok, retry := l.allow("s", t0.Add(tc.at))
		if ok != tc.ok || (retry-tc.retry).Abs() > time.Microsecond {
			t.Fatalf("at %v: allow = %v, %v; want %v, %v", tc.at, ok, retry, tc.ok, tc.retry)
		}
	}
	if ok, _ := l.allow("other", t0); !ok {
		t.Fatal("a new key has no tokens")
	}
}

func TestLimiterSweepsRefilledBuckets(t *testing.T) {
	l := newLimiter(1, 1)
	l.sweepAt = 10
	t0 := time.Unix(1000, 0)
	for i := range 10 {
		l.allow(string(rune('a'+i)), t0)
	}
	// A second later every bucket is full again and can be forgotten.
	l.allow("new", t0.Add(time.Second))
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", len(l.buckets))
	}
}

func TestEveryIsExact(t *testing.T) {
	for _, ratio := range []float64{0, 0.01, 0.1, 1.0 / 3, 0.5, 1} {
		e := every{ratio: ratio}
		n := 0
		for range 300 {
			if e.fire() {
				n++
			}
		}
		if want := int(300 * ratio); n != want && n != want+1 {
			t.Errorf("ratio %g: fired %d of 300, want %d", ratio, n, want)
		}
	}
}

func TestImportIDs(t *testing.T) {
	epoch := time.Unix(2000, 0)
	k := &keys{secret: []byte("0123456789abcdef0123"), epoch: epoch, proc: 1, procs: 3}
	now := epoch.Add(90 * time.Second)
	a, b := k.nextSeq(now), k.nextSeq(now)
	if a%3 != 1 || b%3 != 1 || b <= a {
		t.Fatalf("sequence numbers %d, %d: want increasing and ≡ 1 mod 3", a, b)
	}
	if got := k.seqTime(a); got.Sub(now).Abs() > time.Millisecond {
		t.Fatalf("seqTime = %v, want %v", got, now)
	}
	id := k.importID("ann", "job-github", a)
	if id >= 1<<53 {
		t.Fatalf("id %d is not safe in JSON", id)
	}
	if seq, ok := k.importSeq("ann", "job-github", id); !ok || seq != a {
		t.Fatalf("importSeq = %d, %v", seq, ok)
	}
	for _, tc := range []struct{ session, kind string }{{"bob", "job-github"}, {"ann", "job-youtube"}, {"ann", "project-github"}} {
		if _, ok := k.importSeq(tc.session, tc.kind, id); ok {
			t.Errorf("id accepted for %s %s", tc.session, tc.kind)
		}
	}
	if _, ok := k.importSeq("ann", "job-github", 42); ok {
		t.Error("a catalogue id passed as an import")
	}
}

func TestSessionSignature(t *testing.T) {
	k := &keys{secret: []byte("0123456789abcdef0123")}
	v, err := k.newSession("ann")
	if err != nil {
		t.Fatal(err)
	}
	if user, err := k.session(v); err != nil || user != "ann" {
		t.Fatalf("session = %q, %v", user, err)
	}
	other := &keys{secret: []byte("another secret of twenty")}
	for _, bad := range []string{"", "x", v + "x", "a" + v, v[:len(v)-2]} {
		if _, err := k.session(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if _, err := other.session(v); err == nil {
		t.Error("a session signed with another secret was accepted")
	}
}
