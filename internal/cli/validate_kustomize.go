package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	kustomizetypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/trusted-delivery/trusted-delivery/internal/cli/yamldoc"
)

// originAnnotation is the annotation in which kustomize records the file
// that a resource came from, when the kustomization's buildMetadata lists
// originAnnotations.
const originAnnotation = "config.kubernetes.io/origin"

// origin is the value of originAnnotation.
type origin struct {
	// Path is the file of the resource, relative to the kustomization that
	// was built.
	Path string `json:"path"`
	// Repo is set for a resource from a remote base.
	Repo string `json:"repo"`
	// ConfiguredIn is the kustomization or generator file that produced a
	// generated resource.
	ConfiguredIn string `json:"configuredIn"`
}

// originFS reads the files of a kustomize build from disk, and adds
// originAnnotations to the buildMetadata of the kustomization being built,
// so that each resource names the file it came from.
type originFS struct {
	filesys.FileSystem
	// kustomization is the absolute path of the kustomization file.
	kustomization string
	// injected is set when the kustomization did not ask for origin
	// annotations itself, so they are removed from the objects again.
	injected bool
}

func (f *originFS) ReadFile(path string) ([]byte, error) {
	data, err := f.FileSystem.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if abs, absErr := filepath.Abs(path); absErr != nil || abs != f.kustomization {
		return data, nil
	}
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil || k == nil {
		// kustomize reports the syntax error itself.
		return data, nil
	}
	metadata, _ := k["buildMetadata"].([]any)
	if slices.Contains(metadata, any(kustomizetypes.OriginAnnotations)) {
		return data, nil
	}
	k["buildMetadata"] = append(metadata, kustomizetypes.OriginAnnotations)
	f.injected = true
	return yaml.Marshal(k)
}

// addKustomization builds the kustomization in dir with the kustomize Go
// API and adds the resulting objects, each located at the file it came
// from. Kustomize components are skipped: they are checked through the
// kustomizations that use them.
func (in *inputs) addKustomization(dir string) error {
	file := kustomizationFile(dir)
	if file == "" {
		return fmt.Errorf("kustomize build %s: no kustomization file in the directory", dir)
	}
	if kind := kustomizationKind(file); kind == kustomizetypes.ComponentKind {
		in.notef("skipped %s: a kustomize Component is checked through the kustomizations that use it", dir)
		return nil
	}
	absFile, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	fsys := &originFS{FileSystem: filesys.MakeFsOnDisk(), kustomization: absFile}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, filepath.Dir(absFile))
	if err != nil {
		return fmt.Errorf("kustomize build %s: %w", dir, err)
	}

	locator := &documentLocator{docs: map[string][]yamldoc.Document{}}
	for _, res := range resources.Resources() {
		object, err := res.Map()
		if err != nil {
			return fmt.Errorf("kustomize build %s: read %s: %w", dir, res.CurId(), err)
		}
		u := &unstructured.Unstructured{Object: object}
		m := &manifest{file: file, kustomization: dir, object: u}
		if o, ok := readOrigin(u, fsys.injected); ok {
			switch {
			case o.Path != "" && o.Repo == "":
				m.file = filepath.Join(dir, o.Path)
				m.line = locator.line(m.file, u)
			case o.ConfiguredIn != "" && o.Repo == "":
				m.file = filepath.Join(dir, o.ConfiguredIn)
			}
		}
		in.addFile(m.file)
		in.manifests = append(in.manifests, m)
	}
	return nil
}

// kustomizationKind returns the kind of a kustomization file:
// Kustomization, Component, or "" when it cannot be read.
func kustomizationKind(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	var header struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &header); err != nil {
		return ""
	}
	return header.Kind
}

// readOrigin returns the origin annotation of u, and removes it when tdctl
// added it.
func readOrigin(u *unstructured.Unstructured, remove bool) (origin, bool) {
	annotations := u.GetAnnotations()
	value, ok := annotations[originAnnotation]
	if !ok {
		return origin{}, false
	}
	if remove {
		delete(annotations, originAnnotation)
		if len(annotations) == 0 {
			unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
		} else {
			u.SetAnnotations(annotations)
		}
	}
	var o origin
	if err := yaml.Unmarshal([]byte(value), &o); err != nil {
		return origin{}, false
	}
	return o, true
}

// documentLocator finds the document of a built object in its source file.
type documentLocator struct {
	docs map[string][]yamldoc.Document
}

// line returns the first line of the document in file that defines u, or 0
// when it cannot tell. Kustomize may have renamed the object with namePrefix
// or nameSuffix. So a document of the same kind matches when its name is
// part of the built name, and the longest such name wins.
func (l *documentLocator) line(file string, u *unstructured.Unstructured) int {
	docs, ok := l.docs[file]
	if !ok {
		if data, err := os.ReadFile(file); err == nil {
			docs, _ = yamldoc.Parse(file, data)
		}
		l.docs[file] = docs
	}
	best, bestLength := 0, -1
	for _, doc := range docs {
		object, ok := doc.Object.(map[string]any)
		if !ok {
			continue
		}
		source := &unstructured.Unstructured{Object: object}
		if source.GetKind() != u.GetKind() || !strings.Contains(u.GetName(), source.GetName()) {
			continue
		}
		if len(source.GetName()) > bestLength {
			best, bestLength = doc.Line, len(source.GetName())
		}
	}
	return best
}
