package cli

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/trusted-delivery/trusted-delivery/internal/cli/yamldoc"
)

// stdinName is the file name of standard input in reports.
const stdinName = "<stdin>"

// kustomizationFileNames are the names kustomize reads a kustomization from.
var kustomizationFileNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// kustomizeConfigGroup is the API group of kustomization files, which are
// build instructions rather than Kubernetes objects.
const kustomizeConfigGroup = "kustomize.config.k8s.io"

// manifest is one Kubernetes object read from the inputs.
type manifest struct {
	// file is the path of the file that defines the object, as given on the
	// command line or found in a directory, or stdinName.
	file string
	// line is the first line of the object's document in file, 0 when
	// unknown.
	line int
	// kustomization is the directory whose kustomize build produced the
	// object, empty for plain files.
	kustomization string
	object        *unstructured.Unstructured
}

// inputs are the objects to check and what was read to find them.
type inputs struct {
	manifests []*manifest
	// files are the files read, in order, each once.
	files []string
	// notes tell what was skipped and why; they go to standard error.
	notes []string
	// skipDirs are absolute paths of directories that walks leave out: the
	// --policies directories, whose manifests are the policies themselves.
	skipDirs []string
}

func (in *inputs) addFile(name string) {
	if !slices.Contains(in.files, name) {
		in.files = append(in.files, name)
	}
}

func (in *inputs) notef(format string, args ...any) {
	in.notes = append(in.notes, fmt.Sprintf(format, args...))
}

// loadInputs reads every argument: "-" for standard input, a file, a
// kustomization file or directory (built with kustomize), or a directory
// walked recursively for *.yaml, *.yml and *.json files. Directory walks
// leave out skipDirs.
func loadInputs(args []string, stdin io.Reader, skipDirs []string) (*inputs, error) {
	in := &inputs{}
	for _, dir := range skipDirs {
		if abs, err := filepath.Abs(dir); err == nil {
			in.skipDirs = append(in.skipDirs, abs)
		}
	}
	readStdin := false
	for _, arg := range args {
		if arg == "-" {
			if readStdin {
				return nil, fmt.Errorf(`standard input ("-") is given twice`)
			}
			readStdin = true
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			if err := in.addDocuments(stdinName, data); err != nil {
				return nil, err
			}
			continue
		}
		info, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", arg, trimPathError(err))
		}
		switch {
		case info.IsDir():
			if err := in.addDirectory(arg); err != nil {
				return nil, err
			}
		case slices.Contains(kustomizationFileNames, filepath.Base(arg)):
			if err := in.addKustomization(filepath.Dir(arg)); err != nil {
				return nil, err
			}
		case in.inSkipDir(arg):
			in.notef("skipped %s: it is in a --policies directory", arg)
		default:
			if err := in.addFileContent(arg); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

// addDirectory walks root. A directory with a kustomization file is built
// as a whole, and its files are not read one by one. Hidden directories
// such as .git are skipped.
func (in *inputs) addDirectory(root string) error {
	return filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %s: %w", path, trimPathError(err))
		}
		if entry.IsDir() {
			if path != root && strings.HasPrefix(entry.Name(), ".") {
				return filepath.SkipDir
			}
			if in.inSkipDir(path) {
				in.notef("skipped %s: it is a --policies directory", path)
				return filepath.SkipDir
			}
			if kustomizationFile(path) != "" {
				if err := in.addKustomization(path); err != nil {
					return err
				}
				return filepath.SkipDir
			}
			return nil
		}
		if !isManifestFile(path) {
			return nil
		}
		return in.addFileContent(path)
	})
}

// inSkipDir reports whether path is one of skipDirs or inside one.
func (in *inputs) inSkipDir(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	for _, dir := range in.skipDirs {
		if abs == dir || strings.HasPrefix(abs, dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func isManifestFile(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// kustomizationFile returns the path of the kustomization file in dir, or
// "" when it has none.
func kustomizationFile(dir string) string {
	for _, name := range kustomizationFileNames {
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() {
			return path
		}
	}
	return ""
}

func (in *inputs) addFileContent(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, trimPathError(err))
	}
	return in.addDocuments(path, data)
}

// addDocuments adds the Kubernetes objects of a YAML stream. Documents that
// are not Kubernetes objects are skipped with a note; a v1 List adds its
// items.
func (in *inputs) addDocuments(name string, data []byte) error {
	in.addFile(name)
	docs, err := yamldoc.Parse(name, data)
	if err != nil {
		return err
	}
	for _, doc := range docs {
		if doc.Object == nil {
			continue
		}
		object, ok := doc.Object.(map[string]any)
		if !ok {
			in.notef("skipped %s:%d: not a Kubernetes object (the document is not a mapping)", name, doc.Line)
			continue
		}
		u := &unstructured.Unstructured{Object: object}
		switch {
		case u.GetAPIVersion() == "" || u.GetKind() == "":
			in.notef("skipped %s:%d: not a Kubernetes object (no apiVersion or kind)", name, doc.Line)
		case u.GroupVersionKind().Group == kustomizeConfigGroup:
			in.notef("skipped %s:%d: a %s is kustomize configuration; pass its directory to build it",
				name, doc.Line, u.GetKind())
		case u.GetAPIVersion() == "v1" && u.GetKind() == "List":
			if err := in.addListItems(name, doc.Line, u); err != nil {
				return err
			}
		default:
			in.manifests = append(in.manifests, &manifest{file: name, line: doc.Line, object: u})
		}
	}
	return nil
}

func (in *inputs) addListItems(name string, line int, list *unstructured.Unstructured) error {
	items, _, err := unstructured.NestedSlice(list.Object, "items")
	if err != nil {
		return fmt.Errorf("%s:%d: invalid List: %w", name, line, err)
	}
	for i, item := range items {
		object, ok := item.(map[string]any)
		u := &unstructured.Unstructured{Object: object}
		if !ok || u.GetAPIVersion() == "" || u.GetKind() == "" {
			in.notef("skipped %s:%d: items[%d] of the List is not a Kubernetes object", name, line, i)
			continue
		}
		in.manifests = append(in.manifests, &manifest{file: name, line: line, object: u})
	}
	return nil
}
