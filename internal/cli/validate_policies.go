package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/cli/yamldoc"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// policyLocation is the source of a Policy, PolicySet or PolicyConfig.
type policyLocation struct {
	// file is the manifest file, empty for objects read from the cluster.
	file string
	// line is the first line of the document in file.
	line int
	// codeLine is the line of spec.code in file; codeBlock is set when the
	// code is a block scalar (| or >), whose content starts on the next
	// line.
	codeLine  int
	codeBlock bool
}

// String names the location in messages: FILE:LINE, or "the cluster".
func (l policyLocation) String() string {
	if l.file == "" {
		return "the cluster"
	}
	return fmt.Sprintf("%s:%d", l.file, l.line)
}

// policyBundle is every Policy, PolicySet and PolicyConfig to check the
// inputs with.
type policyBundle struct {
	policies []pacv2beta3.Policy
	sets     []pacv2beta2.PolicySet
	configs  []pacv2beta3.PolicyConfig
	// locations maps "Kind/name" to where the object was read.
	locations map[string]policyLocation
	notes     []string
}

func newPolicyBundle() *policyBundle {
	return &policyBundle{locations: map[string]policyLocation{}}
}

func (b *policyBundle) notef(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func policyKey(kind, name string) string {
	return kind + "/" + name
}

// loadDirectory reads the policy kinds from every *.yaml, *.yml and *.json
// file under dir. Documents of other kinds are ignored.
func (b *policyBundle) loadDirectory(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("policy directory %s: %w", dir, trimPathError(err))
	}
	if !info.IsDir() {
		return fmt.Errorf("policy directory %s: not a directory", dir)
	}
	return filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %s: %w", path, trimPathError(err))
		}
		if entry.IsDir() {
			if path != dir && strings.HasPrefix(entry.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !isManifestFile(path) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, trimPathError(err))
		}
		docs, err := yamldoc.Parse(path, data)
		if err != nil {
			return err
		}
		for _, doc := range docs {
			if err := b.addDocument(path, doc); err != nil {
				return err
			}
		}
		return nil
	})
}

// addDocument adds a document if it is a Policy, PolicySet or PolicyConfig
// of any served version.
func (b *policyBundle) addDocument(file string, doc yamldoc.Document) error {
	object, ok := doc.Object.(map[string]any)
	if !ok {
		return nil
	}
	u := &unstructured.Unstructured{Object: object}
	if u.GroupVersionKind().Group != pacv2beta3.GroupVersion.Group {
		return nil
	}
	loc := policyLocation{file: file, line: doc.Line}
	switch u.GetKind() {
	case "Policy":
		p := pacv2beta3.Policy{}
		if err := b.decode(u, &p, loc); err != nil {
			return err
		}
		loc.codeLine, loc.codeBlock = yamldoc.LineOf(doc.Node, "spec", "code")
		return b.addPolicy(p, loc)
	case "PolicySet":
		set := pacv2beta2.PolicySet{}
		if err := b.decode(u, &set, loc); err != nil {
			return err
		}
		return b.addSet(set, loc)
	case "PolicyConfig":
		config := pacv2beta3.PolicyConfig{}
		if err := b.decode(u, &config, loc); err != nil {
			return err
		}
		return b.addConfig(config, loc)
	default:
		b.notef("skipped %s: kind %s of %s is not a policy kind", loc, u.GetKind(), u.GetAPIVersion())
		return nil
	}
}

// decode converts u into obj. The versions share one schema, so v2beta2
// objects decode into v2beta3 types. Unknown fields are dropped with a
// note, as the API server prunes them.
func (b *policyBundle) decode(u *unstructured.Unstructured, obj any, loc policyLocation) error {
	err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true)
	if err == nil {
		return nil
	}
	if runtime.IsStrictDecodingError(err) {
		b.notef("%s: %s %s has fields that the schema does not know and the API server drops: %v",
			loc, u.GetKind(), u.GetName(), err)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s: invalid %s %s: %w", loc, u.GetKind(), u.GetName(), err)
}

func (b *policyBundle) addPolicy(p pacv2beta3.Policy, loc policyLocation) error {
	if p.Name == "" {
		p.Name = p.Spec.ID
	}
	switch {
	case p.Name == "":
		return fmt.Errorf("%s: a Policy needs metadata.name, which is its ID", loc)
	case p.Spec.ID != "" && p.Spec.ID != p.Name:
		return fmt.Errorf("%s: Policy %s: spec.id %q must be equal to metadata.name, which is the policy ID",
			loc, p.Name, p.Spec.ID)
	case !slices.Contains([]string{pacv2beta3.SeverityLow, pacv2beta3.SeverityMedium, pacv2beta3.SeverityHigh}, p.Spec.Severity):
		return fmt.Errorf("%s: Policy %s: spec.severity %q must be low, medium or high", loc, p.Name, p.Spec.Severity)
	}
	key := policyKey("Policy", p.Name)
	if i := slices.IndexFunc(b.policies, func(q pacv2beta3.Policy) bool { return q.Name == p.Name }); i >= 0 {
		previous := b.locations[key]
		if previous.file != "" && loc.file != "" {
			return fmt.Errorf("%s: Policy %s is already defined at %s", loc, p.Name, previous)
		}
		b.notef("Policy %s from %s replaces the one from %s", p.Name, loc, previous)
		b.policies[i] = p
	} else {
		b.policies = append(b.policies, p)
	}
	b.locations[key] = loc
	return nil
}

func (b *policyBundle) addSet(set pacv2beta2.PolicySet, loc policyLocation) error {
	key := policyKey("PolicySet", set.Name)
	if i := slices.IndexFunc(b.sets, func(s pacv2beta2.PolicySet) bool { return s.Name == set.Name }); i >= 0 {
		previous := b.locations[key]
		if previous.file != "" && loc.file != "" {
			return fmt.Errorf("%s: PolicySet %s is already defined at %s", loc, set.Name, previous)
		}
		b.notef("PolicySet %s from %s replaces the one from %s", set.Name, loc, previous)
		b.sets[i] = set
	} else {
		b.sets = append(b.sets, set)
	}
	b.locations[key] = loc
	return nil
}

func (b *policyBundle) addConfig(config pacv2beta3.PolicyConfig, loc policyLocation) error {
	key := policyKey("PolicyConfig", config.Name)
	if i := slices.IndexFunc(b.configs, func(c pacv2beta3.PolicyConfig) bool { return c.Name == config.Name }); i >= 0 {
		previous := b.locations[key]
		if previous.file != "" && loc.file != "" {
			return fmt.Errorf("%s: PolicyConfig %s is already defined at %s", loc, config.Name, previous)
		}
		b.notef("PolicyConfig %s from %s replaces the one from %s", config.Name, loc, previous)
		b.configs[i] = config
	} else {
		b.configs = append(b.configs, config)
	}
	b.locations[key] = loc
	return nil
}

// loadCluster reads the Policies, PolicySets and PolicyConfigs of the
// cluster. Those read from files first take precedence over them.
func (b *policyBundle) loadCluster(ctx context.Context, c client.Reader) error {
	policies := &pacv2beta3.PolicyList{}
	if err := c.List(ctx, policies); err != nil {
		return fmt.Errorf("list Policies in the cluster: %w", err)
	}
	sets := &pacv2beta2.PolicySetList{}
	if err := c.List(ctx, sets); err != nil {
		return fmt.Errorf("list PolicySets in the cluster: %w", err)
	}
	configs := &pacv2beta3.PolicyConfigList{}
	if err := c.List(ctx, configs); err != nil {
		return fmt.Errorf("list PolicyConfigs in the cluster: %w", err)
	}
	for _, p := range policies.Items {
		if b.addClusterObject("Policy", p.Name) {
			b.policies = append(b.policies, p)
		}
	}
	for _, set := range sets.Items {
		if b.addClusterObject("PolicySet", set.Name) {
			b.sets = append(b.sets, set)
		}
	}
	for _, config := range configs.Items {
		if b.addClusterObject("PolicyConfig", config.Name) {
			b.configs = append(b.configs, config)
		}
	}
	return nil
}

// addClusterObject records an object of the cluster and reports whether to
// use it: a file that defines the same kind and name replaces it.
func (b *policyBundle) addClusterObject(kind, name string) bool {
	key := policyKey(kind, name)
	if local, ok := b.locations[key]; ok {
		b.notef("%s %s from %s replaces the one in the cluster", kind, name, local)
		return false
	}
	b.locations[key] = policyLocation{}
	return true
}

// newEngine loads the bundle into a policy engine. Every policy must be
// ready: code that does not compile, or parameters that are invalid, is an
// input error naming the file and line. Terraform policies are skipped with
// a note.
func (b *policyBundle) newEngine(opts policy.Options) (*policy.Engine, error) {
	engine := policy.NewEngine(opts)
	engine.SetPolicySets(b.sets)
	engine.SetPolicyConfigs(b.configs)
	var errs []error
	for i := range b.policies {
		p := &b.policies[i]
		loc := b.locations[policyKey("Policy", p.Name)]
		if _, err := policy.Compile(p); err != nil {
			errs = append(errs, compileError(p.Name, loc, err))
			continue
		}
		status := engine.UpsertPolicy(p)
		switch {
		case status.Ready:
		case status.Reason == pacv2beta3.PolicyProviderNotEvaluatedReason:
			b.notef("skipped Policy %s (%s): %s", p.Name, loc, status.Message)
			engine.RemovePolicy(p.Name)
		default:
			errs = append(errs, fmt.Errorf("%s: Policy %s is not usable (%s): %s", loc, p.Name, status.Reason, status.Message))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return engine, nil
}

// compileError names the file line of the first compiler error: the line of
// spec.code plus the line within the code.
func compileError(name string, loc policyLocation, err error) error {
	var compileErr *policy.CompileError
	if !errors.As(err, &compileErr) {
		return fmt.Errorf("%s: Policy %s does not compile: %w", loc, name, err)
	}
	where := loc.String()
	if loc.file != "" && loc.codeLine > 0 && compileErr.Line > 0 {
		line := loc.codeLine + compileErr.Line
		if !loc.codeBlock {
			line--
		}
		where = fmt.Sprintf("%s:%d", loc.file, line)
	}
	return fmt.Errorf("%s: Policy %s does not compile (%s): %s", where, name, compileErr.Reason, compileErr.Message)
}
