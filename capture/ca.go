package capture

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// CA is the certificate authority a forward proxy signs its certificates
// with: for each host a client asks to reach through CONNECT, the proxy
// makes a certificate for that host on the fly, signed by the CA, so a
// client that trusts the CA speaks TLS to the proxy as it would to the
// host. A CA is safe for concurrent use; leaf certificates are kept per
// host for as long as it lives.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	leafKey *ecdsa.PrivateKey // one key for every leaf, as mitmproxy does

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// maxLeaves bounds the leaf cache; past it the cache starts again.
const maxLeaves = 10000

// CA file names, in the directory DefaultCADir returns.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// DefaultCADir returns where the capture keeps its CA: thrive/ under the
// user's config directory ($XDG_CONFIG_HOME or ~/.config on Linux).
func DefaultCADir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("capture: the CA's directory: %w", err)
	}
	return filepath.Join(d, "thrive"), nil
}

// OpenCA returns the forward proxy's CA and the path of its certificate:
// the CA of certFile and keyFile, or, both empty, the one in DefaultCADir,
// made there on first use, which it tells made (clients must then trust
// it).
func OpenCA(certFile, keyFile string, made io.Writer) (*CA, string, error) {
	if certFile != "" || keyFile != "" {
		ca, err := LoadCA(certFile, keyFile)
		if err == nil {
			warnReadableKey(made, keyFile)
		}
		return ca, certFile, err
	}
	dir, err := DefaultCADir()
	if err != nil {
		return nil, "", err
	}
	ca, created, err := LoadOrCreateCA(dir)
	if err != nil {
		return nil, "", err
	}
	if created {
		fmt.Fprintf(made, "made a new CA for the forward proxy: %s; clients must trust it to be recorded over HTTPS\n", filepath.Join(dir, CACertFile))
	}
	warnReadableKey(made, filepath.Join(dir, CAKeyFile))
	return ca, filepath.Join(dir, CACertFile), nil
}

// warnReadableKey says so on w when the CA key at path can be read by
// others than its owner: whoever reads it can sign certificates that every
// client trusting the CA accepts, and read their HTTPS.
func warnReadableKey(w io.Writer, path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	fmt.Fprintf(w, "warning: the CA key %s can be read by others (mode %04o): whoever reads it can intercept the HTTPS of every client that trusts the CA; chmod 600 %s\n",
		path, fi.Mode().Perm(), path)
}

// LoadOrCreateCA loads the CA kept in dir, or makes one there when it has
// none (the key readable by the user only) and reports created.
func LoadOrCreateCA(dir string) (ca *CA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	ca, err = LoadCA(certPath, keyPath)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return ca, false, err
	}
	if _, serr := os.Stat(certPath); serr == nil {
		return nil, false, err // the certificate without its key: not ours to replace
	}
	ca, keyPEM, err := NewCA(time.Now())
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("capture: CA: %w", err)
	}
	// The key first, so that a certificate on disk always has its key.
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := writeNew(certPath, ca.certPEM, 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// writeNew writes data to a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("capture: CA: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("capture: CA: %s: %w", path, err)
	}
	return nil
}

// NewCA makes a new CA valid for ten years from now, and returns it with
// its private key in PEM.
func NewCA(now time.Time) (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("capture: CA key: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "thrive capture CA (" + host + ")", Organization: []string{"thrive"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("capture: CA certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("capture: CA key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	ca, err := ParseCA(certPEM, keyPEM)
	return ca, keyPEM, err
}

// LoadCA reads a CA's certificate and private key from PEM files.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("capture: CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("capture: CA key: %w", err)
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w (%s, %s)", err, certFile, keyFile)
	}
	return ca, nil
}

// ParseCA makes a CA of a PEM certificate and its PEM private key (PKCS #8,
// PKCS #1 or SEC 1), which must match and be allowed to sign certificates.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("capture: CA: %w", err)
	}
	cert := pair.Leaf
	if cert == nil {
		if cert, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("capture: CA: %w", err)
		}
	}
	if !cert.IsCA || cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("capture: CA: the certificate is not a CA's (no basic constraints CA:TRUE, or no certSign usage)")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("capture: CA: the key cannot sign")
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("capture: leaf key: %w", err)
	}
	first, _ := pem.Decode(certPEM)
	return &CA{
		cert:    cert,
		certPEM: pem.EncodeToMemory(first),
		key:     signer,
		leafKey: leafKey,
		leaves:  map[string]*tls.Certificate{},
	}, nil
}

// PEM returns the CA's certificate in PEM, for clients to trust.
func (ca *CA) PEM() []byte { return ca.certPEM }

// Certificate returns the CA's certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Leaf returns the certificate the proxy shows for host (a name or an IP
// address), made once and kept.
func (ca *CA) Leaf(host string) (*tls.Certificate, error) {
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return nil, errors.New("capture: a certificate for no host")
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c := ca.leaves[host]; c != nil {
		return c, nil
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host, Organization: []string{"thrive capture"}},
		NotBefore:    now.Add(-time.Hour),
		// Browsers refuse server certificates valid for more than 398 days.
		NotAfter:       now.AddDate(0, 0, 90),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		AuthorityKeyId: ca.cert.SubjectKeyId,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &ca.leafKey.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("capture: certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("capture: certificate for %s: %w", host, err)
	}
	c := &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: ca.leafKey, Leaf: leaf}
	if len(ca.leaves) >= maxLeaves {
		clear(ca.leaves)
	}
	ca.leaves[host] = c
	return c, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on the systems Go supports.
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1))
}

func keyID(pub *ecdsa.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	h := crypto.SHA256.New()
	h.Write(b)
	return h.Sum(nil)[:20]
}
