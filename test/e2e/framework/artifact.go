package framework

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ArtifactServer serves source artifacts (.tar.gz archives of manifests) over
// HTTP on 127.0.0.1, in the role that source-controller's storage server has
// in a cluster. It serves every artifact published to it until Close.
type ArtifactServer struct {
	server *httptest.Server

	mu       sync.RWMutex
	archives map[string][]byte // by URL path, e.g. "/<sha256>.tar.gz"
}

// NewArtifactServer starts an ArtifactServer. Call Close when done.
func NewArtifactServer() *ArtifactServer {
	s := &ArtifactServer{archives: map[string][]byte{}}
	s.server = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// Close shuts the server down and blocks until its requests have finished.
func (s *ArtifactServer) Close() {
	s.server.Close()
}

func (s *ArtifactServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET and HEAD are supported", http.StatusMethodNotAllowed)
		return
	}
	s.mu.RLock()
	archive, ok := s.archives[r.URL.Path]
	s.mu.RUnlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	http.ServeContent(w, r, path.Base(r.URL.Path), time.Time{}, bytes.NewReader(archive))
}

// ServeArtifact packs files, a map from slash-separated relative path to
// content, into a .tar.gz archive, serves it, and returns the artifact that a source's status
// carries. The archive is deterministic, so the same files give the same
// digest and revision.
//
// The revision has Flux's Git format "main@sha1:<hex>", but no Git commit
// exists: the hex is the SHA-1 of the archive, which makes it change
// whenever the files change.
func (s *ArtifactServer) ServeArtifact(files map[string]string) (*meta.Artifact, error) {
	archive, err := buildArchive(files)
	if err != nil {
		return nil, err
	}

	sha256Sum := sha256.Sum256(archive)
	sha1Sum := sha1.Sum(archive)
	urlPath := "/" + hex.EncodeToString(sha256Sum[:]) + ".tar.gz"

	s.mu.Lock()
	s.archives[urlPath] = archive
	s.mu.Unlock()

	size := int64(len(archive))
	return &meta.Artifact{
		Path:           strings.TrimPrefix(urlPath, "/"),
		URL:            s.server.URL + urlPath,
		Revision:       "main@sha1:" + hex.EncodeToString(sha1Sum[:]),
		Digest:         "sha256:" + hex.EncodeToString(sha256Sum[:]),
		LastUpdateTime: metav1.Now(),
		Size:           &size,
	}, nil
}

// ServeArtifactDir is ServeArtifact with the regular files under dir, named
// by their path relative to dir.
func (s *ArtifactServer) ServeArtifactDir(dir string) (*meta.Artifact, error) {
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(name string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !entry.Type().IsRegular() {
			return nil
		}
		content, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		relative, err := filepath.Rel(dir, name)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(relative)] = string(content)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read artifact files from %s: %w", dir, err)
	}
	return s.ServeArtifact(files)
}

// buildArchive writes files into a gzip-compressed tarball in sorted order,
// with fixed timestamps and modes, so that equal input gives equal bytes.
func buildArchive(files map[string]string) ([]byte, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("invalid artifact: no files given")
	}
	names := make([]string, 0, len(files))
	for name := range files {
		if !fs.ValidPath(name) || name == "." {
			return nil, fmt.Errorf("invalid artifact file name %q: want a relative slash-separated path without . or .. elements", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range names {
		content := files[name]
		header := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     name,
			Mode:     0o644,
			Size:     int64(len(content)),
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(header); err != nil {
			return nil, fmt.Errorf("failed to write the tar header of %s: %w", name, err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			return nil, fmt.Errorf("failed to write %s to the tarball: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("failed to finish the tarball: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("failed to finish the gzip stream: %w", err)
	}
	return buf.Bytes(), nil
}
