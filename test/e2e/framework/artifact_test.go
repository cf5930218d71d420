package framework

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

func TestServeArtifactServesTarball(t *testing.T) {
	g := NewWithT(t)
	server := NewArtifactServer()
	defer server.Close()

	files := map[string]string{
		"configmap.yaml":         "kind: ConfigMap\n",
		"nested/deployment.yaml": "kind: Deployment\n",
	}
	artifact, err := server.ServeArtifact(files)
	g.Expect(err).NotTo(HaveOccurred())

	body := httpGet(g, artifact.URL, http.StatusOK)
	sum := sha256.Sum256(body)
	g.Expect(artifact.Digest).To(Equal("sha256:" + hex.EncodeToString(sum[:])))
	g.Expect(artifact.Size).NotTo(BeNil())
	g.Expect(*artifact.Size).To(Equal(int64(len(body))))
	g.Expect(artifact.Revision).To(MatchRegexp(`^main@sha1:[0-9a-f]{40}$`))
	g.Expect(artifact.URL).To(HaveSuffix("/" + artifact.Path))
	g.Expect(readArchive(g, body)).To(Equal(files))
}

func TestServeArtifactIsDeterministic(t *testing.T) {
	g := NewWithT(t)
	server := NewArtifactServer()
	defer server.Close()

	first, err := server.ServeArtifact(map[string]string{"a.yaml": "a", "b.yaml": "b"})
	g.Expect(err).NotTo(HaveOccurred())
	second, err := server.ServeArtifact(map[string]string{"b.yaml": "b", "a.yaml": "a"})
	g.Expect(err).NotTo(HaveOccurred())
	changed, err := server.ServeArtifact(map[string]string{"a.yaml": "a", "b.yaml": "c"})
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(second.Digest).To(Equal(first.Digest))
	g.Expect(second.Revision).To(Equal(first.Revision))
	g.Expect(changed.Digest).NotTo(Equal(first.Digest))
	g.Expect(changed.Revision).NotTo(Equal(first.Revision))

	// Publishing a new revision keeps serving the earlier ones.
	httpGet(g, first.URL, http.StatusOK)
	httpGet(g, changed.URL, http.StatusOK)
}

func TestServeArtifactDirMatchesMap(t *testing.T) {
	g := NewWithT(t)
	server := NewArtifactServer()
	defer server.Close()

	dir := t.TempDir()
	g.Expect(os.MkdirAll(filepath.Join(dir, "apps"), 0o755)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "apps", "app.yaml"), []byte("app"), 0o644)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("k"), 0o644)).To(Succeed())

	fromDir, err := server.ServeArtifactDir(dir)
	g.Expect(err).NotTo(HaveOccurred())
	fromMap, err := server.ServeArtifact(map[string]string{"apps/app.yaml": "app", "kustomization.yaml": "k"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fromDir.Digest).To(Equal(fromMap.Digest))
}

func TestServeArtifactRejectsInvalidInput(t *testing.T) {
	server := NewArtifactServer()
	defer server.Close()

	cases := map[string]map[string]string{
		"no files":        {},
		"absolute path":   {"/etc/passwd": "x"},
		"parent element":  {"../escape.yaml": "x"},
		"dot":             {".": "x"},
		"trailing slash":  {"dir/": "x"},
		"empty file name": {"": "x"},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := server.ServeArtifact(files)
			NewWithT(t).Expect(err).To(HaveOccurred())
		})
	}
}

func TestArtifactServerUnknownPathNotFound(t *testing.T) {
	g := NewWithT(t)
	server := NewArtifactServer()
	defer server.Close()

	artifact, err := server.ServeArtifact(map[string]string{"a.yaml": "a"})
	g.Expect(err).NotTo(HaveOccurred())
	httpGet(g, artifact.URL+".missing", http.StatusNotFound)
}

func httpGet(g *WithT, url string, wantStatus int) []byte {
	response, err := http.Get(url)
	g.Expect(err).NotTo(HaveOccurred())
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(response.StatusCode).To(Equal(wantStatus), "GET %s", url)
	return body
}

func readArchive(g *WithT, archive []byte) map[string]string {
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	g.Expect(err).NotTo(HaveOccurred())
	reader := tar.NewReader(gz)
	files := map[string]string{}
	for {
		header, err := reader.Next()
		if err == io.EOF {
			break
		}
		g.Expect(err).NotTo(HaveOccurred())
		content, err := io.ReadAll(reader)
		g.Expect(err).NotTo(HaveOccurred())
		files[header.Name] = string(content)
	}
	return files
}
