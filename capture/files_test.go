package capture_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/capture"
)

func TestParseRotate(t *testing.T) {
	for _, tc := range []struct {
		in    string
		every time.Duration
		size  int64
	}{{"1h", time.Hour, 0}, {"100MB", 0, 100_000_000}, {"64KiB", 0, 64 << 10}} {
		every, size, err := capture.ParseRotate(tc.in)
		if err != nil || every != tc.every || size != tc.size {
			t.Errorf("%q: %v, %d, %v", tc.in, every, size, err)
		}
	}
	for _, in := range []string{"often", "0", "-1h", "0s"} {
		if _, _, err := capture.ParseRotate(in); err == nil || !strings.Contains(err.Error(), "want a size (100MB) or a duration (1h)") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// TestOpenCA makes the CA in the config directory on first use, saying so
// once, keeps it after, and prints it as a PEM file with the ways to trust
// it on the other writer.
func TestOpenCA(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	var made bytes.Buffer
	first, path, err := capture.OpenCA("", "", &made)
	if err != nil || !strings.Contains(made.String(), "made a new CA") || filepath.Base(path) != capture.CACertFile {
		t.Fatalf("first: %v, %q, %q", err, made.String(), path)
	}
	made.Reset()
	again, _, err := capture.OpenCA("", "", &made)
	if err != nil || made.Len() != 0 || !again.Certificate().Equal(first.Certificate()) {
		t.Fatalf("again: %v, said %q, same %v", err, made.String(), again.Certificate().Equal(first.Certificate()))
	}
	block, _ := pem.Decode(again.PEM())
	if block == nil {
		t.Fatalf("not a PEM file: %q", again.PEM())
	}
	if cert, err := x509.ParseCertificate(block.Bytes); err != nil || !cert.Equal(first.Certificate()) {
		t.Fatalf("PEM: %v", err)
	}
	// Files given are used as they are, and missing ones named.
	key := filepath.Join(filepath.Dir(path), capture.CAKeyFile)
	if ca, p, err := capture.OpenCA(path, key, &made); err != nil || p != path || !ca.Certificate().Equal(first.Certificate()) {
		t.Errorf("given files: %v, %q", err, p)
	}
	if _, _, err := capture.OpenCA(path+".missing", key, &made); err == nil || !strings.Contains(err.Error(), path+".missing") {
		t.Errorf("a missing certificate: %v", err)
	}
	// The key is made readable by its owner only; one others can read is
	// warned of, given or kept.
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 || strings.Contains(made.String(), "warning") {
		t.Fatalf("the key made: %v, said %q", err, made.String())
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, files := range [][2]string{{path, key}, {"", ""}} {
		made.Reset()
		if _, _, err := capture.OpenCA(files[0], files[1], &made); err != nil || !strings.Contains(made.String(), "warning: the CA key "+key+" can be read by others (mode 0644)") {
			t.Errorf("a readable key (%q): %v, said %q", files[1], err, made.String())
		}
	}
}

func TestLoadRulesFile(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "rules.yaml"), filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("rules:\n  - profile: chat\n    path: /ws/**\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("rules:\n  - method: GET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rs, err := capture.LoadRulesFile(good); err != nil || len(rs.Rules) != 1 {
		t.Fatalf("good: %v", err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "none.yaml"), "no such file"},
		{"invalid", bad, bad + ": rule 1: no profile"},
	} {
		if _, err := capture.LoadRulesFile(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
