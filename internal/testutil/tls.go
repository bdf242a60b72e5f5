package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCert is a self-signed certificate for 127.0.0.1 and localhost made at test time.
type TestCert struct {
	CertFile, KeyFile string            // PEM files
	Cert              *x509.Certificate // the parsed certificate
	Pair              tls.Certificate   // for a tls.Config
}

// Pool returns a pool that trusts the certificate.
func (c *TestCert) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// MustWriteCert makes a fresh self-signed certificate (ECDSA P-256, valid for a day) and
// writes it and its key as name.crt and name.key in dir.
func MustWriteCert(tb testing.TB, dir, name string) *TestCert {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(tb, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	must(tb, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(tb, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	must(tb, err)
	c := &TestCert{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	must(tb, os.WriteFile(c.CertFile, certPEM, 0o600))
	must(tb, os.WriteFile(c.KeyFile, keyPEM, 0o600))
	c.Cert, err = x509.ParseCertificate(der)
	must(tb, err)
	c.Pair, err = tls.X509KeyPair(certPEM, keyPEM)
	must(tb, err)
	return c
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
