package certs

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
)

// keyPair returns a serving certificate and key for localhost.
func keyPair(t *testing.T) ([]byte, []byte) {
	t.Helper()
	cr := &rotator.CertRotator{
		CAName:       "test-ca",
		DNSName:      LocalDNSName,
		ExtKeyUsages: &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	begin, end := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	ca, err := cr.CreateCACert(begin, end)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := cr.CreateCertPEM(ca, begin, end)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestKeyPairLoader(t *testing.T) {
	dir := t.TempDir()
	loader := newKeyPairLoader(dir, certKey, privateKey)
	if _, err := loader.GetCertificate(nil); err == nil {
		t.Fatal("GetCertificate() without files returned no error")
	}

	cert, key := keyPair(t)
	changed, err := writeKeyPair(dir, cert, key)
	if err != nil || !changed {
		t.Fatalf("writeKeyPair() = %t, %v, want true, nil", changed, err)
	}
	first, err := loader.GetCertificate(nil)
	if err != nil {
		t.Fatalf("GetCertificate() after writing = %v", err)
	}
	if changed, err := writeKeyPair(dir, cert, key); err != nil || changed {
		t.Errorf("writeKeyPair() of the same pair = %t, %v, want false, nil", changed, err)
	}

	// A rotated pair is served once the recheck interval has passed.
	cert2, key2 := keyPair(t)
	if _, err := writeKeyPair(dir, cert2, key2); err != nil {
		t.Fatal(err)
	}
	loader.lastCheck = time.Now().Add(-2 * recheckInterval)
	second, err := loader.GetCertificate(nil)
	if err != nil {
		t.Fatalf("GetCertificate() after rotation = %v", err)
	}
	if string(second.Certificate[0]) == string(first.Certificate[0]) {
		t.Error("GetCertificate() still serves the old certificate after rotation")
	}

	// A half-written pair keeps the last good one in use.
	if _, err := writeKeyPair(dir, cert, key2); err != nil {
		t.Fatal(err)
	}
	loader.lastCheck = time.Now().Add(-2 * recheckInterval)
	third, err := loader.GetCertificate(nil)
	if err != nil || string(third.Certificate[0]) != string(second.Certificate[0]) {
		t.Errorf("GetCertificate() with a mismatched pair = %v, want the previous certificate", err)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	valid := Options{Source: SourceSelf, Namespace: "td", CertDir: "/tmp/certs", DNSNames: []string{"localhost"}}
	if _, err := New(valid); err != nil {
		t.Errorf("New(valid) = %v", err)
	}
	tests := map[string]func(*Options){
		"unknown source":    func(o *Options) { o.Source = "vault" },
		"missing namespace": func(o *Options) { o.Namespace = "" },
		"missing cert dir":  func(o *Options) { o.CertDir = "" },
		"missing DNS names": func(o *Options) { o.DNSNames = nil },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			o := valid
			mutate(&o)
			if _, err := New(o); err == nil {
				t.Error("New() returned no error")
			}
		})
	}
}
