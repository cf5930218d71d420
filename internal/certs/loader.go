package certs

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// recheckInterval is how often the loader looks at the files again.
const recheckInterval = time.Second

// keyPairLoader loads the serving key pair from two files and reloads it
// when they change. Unlike controller-runtime's certwatcher it accepts
// files that do not exist yet, so the webhook server can start before the
// certificate is issued.
type keyPairLoader struct {
	certPath, keyPath string

	mu        sync.Mutex
	cert      *tls.Certificate
	certPEM   []byte
	keyPEM    []byte
	lastCheck time.Time
}

func newKeyPairLoader(dir, certName, keyName string) *keyPairLoader {
	return &keyPairLoader{certPath: filepath.Join(dir, certName), keyPath: filepath.Join(dir, keyName)}
}

// GetCertificate is a tls.Config.GetCertificate function.
func (l *keyPairLoader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return l.load()
}

// load returns the current key pair, reading the files again when the last
// read is older than recheckInterval. A pair that fails to load (for
// example while the two files are being replaced one after the other)
// keeps the previous one in use.
func (l *keyPairLoader) load() (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.cert != nil && now.Sub(l.lastCheck) < recheckInterval {
		return l.cert, nil
	}
	l.lastCheck = now

	certPEM, certErr := os.ReadFile(l.certPath)
	keyPEM, keyErr := os.ReadFile(l.keyPath)
	if certErr != nil || keyErr != nil {
		if l.cert != nil {
			return l.cert, nil
		}
		return nil, fmt.Errorf("webhook serving certificate not available yet in %s: %w",
			filepath.Dir(l.certPath), firstError(certErr, keyErr))
	}
	if l.cert != nil && bytes.Equal(certPEM, l.certPEM) && bytes.Equal(keyPEM, l.keyPEM) {
		return l.cert, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if l.cert != nil {
			return l.cert, nil
		}
		return nil, fmt.Errorf("load webhook serving certificate %s: %w", l.certPath, err)
	}
	l.cert, l.certPEM, l.keyPEM = &pair, certPEM, keyPEM
	return l.cert, nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// atomicBytes is a byte slice that is replaced, never modified, under
// concurrent reads.
type atomicBytes struct {
	p atomic.Pointer[[]byte]
}

func (a *atomicBytes) load() []byte {
	if p := a.p.Load(); p != nil {
		return *p
	}
	return nil
}

func (a *atomicBytes) store(b []byte) {
	a.p.Store(&b)
}
