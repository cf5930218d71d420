package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	cradmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/admission"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// server is the Enforcer on a controller-runtime webhook server on
// 127.0.0.1, with a certificate generated for localhost, and an HTTPS
// client that trusts it.
type server struct {
	url    string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
	dir    string
	// enforcer is replaced per case; handler calls the current one.
	enforcer *admission.Enforcer
}

func startServer() (*server, error) {
	dir, err := os.MkdirTemp("", "td-bench-certs-")
	if err != nil {
		return nil, fmt.Errorf("create certificate directory: %w", err)
	}
	caPEM, err := writeCertificate(dir)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{
		url:  fmt.Sprintf("https://localhost:%d%s", port, admission.EnforcePath),
		dir:  dir,
		done: make(chan error, 1),
	}
	wh := webhook.NewServer(webhook.Options{
		Host:    "127.0.0.1",
		Port:    port,
		CertDir: dir,
		// As the manager runs by default: HTTP/1.1 only.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	wh.Register(admission.EnforcePath, &webhook.Admission{Handler: admissionHandler(func() cradmission.Handler { return s.enforcer })})
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- wh.Start(ctx) }()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	s.client = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 4,
		},
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err == nil {
			conn.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("webhook server on port %d did not start: %w", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop() {
	s.cancel()
	<-s.done
	_ = os.RemoveAll(s.dir)
}

// load gives the server a new engine with the policies.
func (s *server) load(policies []*pacv2beta3.Policy) {
	engine := policy.NewEngine(policy.Options{})
	for _, p := range policies {
		engine.UpsertPolicy(p)
	}
	engine.MarkSynced()
	s.enforcer = &admission.Enforcer{Engine: engine, Namespaces: namespaceReader{}}
}

// measure sends a tenth of the requests to warm up, then the requests one
// after the other. It returns the
// latencies and the heap allocations per request of the whole process,
// client included.
func (s *server) measure(body []byte, requests int) (latencies, float64, error) {
	for range max(requests/10, 1) {
		if _, err := s.review(body); err != nil {
			return nil, 0, err
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	result := make(latencies, 0, requests)
	for range requests {
		start := time.Now()
		response, err := s.review(body)
		if err != nil {
			return nil, 0, err
		}
		result = append(result, time.Since(start))
		if response.Result != nil && response.Result.Code >= 500 {
			return nil, 0, fmt.Errorf("webhook answered %d: %s", response.Result.Code, response.Result.Message)
		}
	}
	runtime.ReadMemStats(&after)
	return result, float64(after.Mallocs-before.Mallocs) / float64(requests), nil
}

func (s *server) review(body []byte) (*admissionv1.AdmissionResponse, error) {
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("send AdmissionReview: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read AdmissionReview response: %w", err)
	}
	review := &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(data, review); err != nil || review.Response == nil {
		return nil, fmt.Errorf("decode AdmissionReview response %q: %w", truncate(data), err)
	}
	return review.Response, nil
}

func truncate(data []byte) []byte {
	return data[:min(len(data), 200)]
}

// reviewBody returns the AdmissionReview of a CREATE of the object.
func reviewBody(obj *unstructured.Unstructured) ([]byte, error) {
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	gvk := obj.GroupVersionKind()
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "bench",
			Kind:      metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			Namespace: obj.GetNamespace(),
			Name:      obj.GetName(),
			Operation: admissionv1.Create,
			UserInfo:  authenticationv1.UserInfo{Username: "bench"},
		},
	}
	review.Request.Object.Raw = raw
	return json.Marshal(review)
}

// admissionHandler calls the handler that current returns.
type admissionHandler func() cradmission.Handler

func (h admissionHandler) Handle(ctx context.Context, req cradmission.Request) cradmission.Response {
	return h().Handle(ctx, req)
}

// namespaceReader returns every Namespace with no labels, and NotFound for
// other kinds. It replaces the manager's cache, which the benchmark does not
// start.
type namespaceReader struct{}

func (namespaceReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{}, key.Name)
	}
	ns.Name = key.Name
	return nil
}

func (namespaceReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("list is not supported")
}

// writeCertificate writes a CA and a serving certificate for localhost
// into dir, with cert-controller as the operator does, and returns the CA.
func writeCertificate(dir string) ([]byte, error) {
	cr := &rotator.CertRotator{
		CAName:         "trusted-delivery-bench-ca",
		CAOrganization: "trusted-delivery",
		DNSName:        "localhost",
		ExtKeyUsages:   &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	begin, end := time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	ca, err := cr.CreateCACert(begin, end)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	certPEM, keyPEM, err := cr.CreateCertPEM(ca, begin, end)
	if err != nil {
		return nil, fmt.Errorf("create serving certificate: %w", err)
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	return ca.CertPEM, nil
}

func freePort() (int, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port, nil
}
