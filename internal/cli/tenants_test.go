package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
	"github.com/trusted-delivery/trusted-delivery/internal/tenantsfile"
)

// weaveTenantsFile uses every key of the Weave GitOps tenants file format.
const weaveTenantsFile = "testdata/tenants.yaml"

func TestExportGolden(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		golden string
	}{
		{"workspaces", []string{"--export"}, "testdata/tenants-workspaces.golden"},
		{"resources", []string{"--export", "--output", "resources"}, "testdata/tenants-resources.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"create", "tenants", "-f", weaveTenantsFile}, tt.args...)
			got := runCLI(t, "", args...)
			expectCode(t, got, ExitOK)
			if got.stderr != "" {
				t.Errorf("stderr: %s", got.stderr)
			}
			compareGolden(t, tt.golden, got.stdout)
		})
	}
}

func TestExportFromStdin(t *testing.T) {
	data, err := os.ReadFile(weaveTenantsFile)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := runCLI(t, "", "create", "tenants", "-f", weaveTenantsFile, "--export")
	fromStdin := runCLI(t, string(data), "create", "tenants", "-f", "-", "--export")
	expectCode(t, fromStdin, ExitOK)
	if fromStdin.stdout != fromFile.stdout {
		t.Errorf("export from stdin differs from export from the file:\n%s", lineDiff(fromFile.stdout, fromStdin.stdout))
	}
}

// The resources output must be the objects that tenancy.Generate returns,
// in the same serialisation as the Workspaces output.
func TestExportResourcesMatchGenerate(t *testing.T) {
	data, err := os.ReadFile(weaveTenantsFile)
	if err != nil {
		t.Fatal(err)
	}
	file, err := tenantsfile.Load(weaveTenantsFile, data, tenantsfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var objects []client.Object
	for _, ws := range file.Workspaces() {
		generated, err := tenancy.Generate(&ws, tenancy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		objects = append(objects, generated...)
	}

	u, err := toUnstructured(objects)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := writeObjects(&want, u); err != nil {
		t.Fatal(err)
	}

	got := runCLI(t, "", "create", "tenants", "-f", weaveTenantsFile, "--export", "-o", "resources")
	expectCode(t, got, ExitOK)
	if got.stdout != want.String() {
		t.Errorf("--output resources differs from tenancy.Generate:\n%s", lineDiff(want.String(), got.stdout))
	}
	if n := strings.Count(got.stdout, "---\n"); n != len(objects) {
		t.Errorf("got %d documents, want %d", n, len(objects))
	}
}

func TestCreateTenantsInputErrors(t *testing.T) {
	dir := t.TempDir()
	unknownKey := writeFile(t, dir, "unknown.yaml", "tenants:\n  - name: a\n    namespaces: [a]\n    teamRbac: {}\n")
	malformed := writeFile(t, dir, "malformed.yaml", "tenants:\n  - name: a\n   namespaces: [a]\n")
	invalid := writeFile(t, dir, "invalid.yaml", "tenants:\n- name: a\n  namespaces: [Bad_NS]\n- name: b\n  namespaces: []\n")

	tests := []struct {
		name string
		args []string
		want []string
	}{{
		name: "unknown key names line and key",
		args: []string{"-f", unknownKey, "--export"},
		want: []string{unknownKey + ":4:5: tenants[0].teamRbac: unknown key \"teamRbac\" (did you mean \"teamRBAC\"?)"},
	}, {
		name: "malformed YAML names the line",
		args: []string{"-f", malformed, "--export"},
		want: []string{malformed + ":3: invalid YAML"},
	}, {
		name: "every problem at once",
		args: []string{"-f", invalid, "--export"},
		want: []string{
			`tenants[0].namespaces[0]: "Bad_NS" is not a valid namespace name`,
			"tenants[1].namespaces: at least one namespace is required",
		},
	}, {
		name: "missing file",
		args: []string{"-f", dir + "/missing.yaml", "--export"},
		want: []string{"missing.yaml: no such file or directory"},
	}, {
		name: "from-file is required",
		args: []string{"--export"},
		want: []string{`required flag(s) "from-file" not set`},
	}, {
		name: "unknown output",
		args: []string{"-f", weaveTenantsFile, "--export", "-o", "yaml"},
		want: []string{`invalid --output "yaml"`},
	}, {
		name: "output without export",
		args: []string{"-f", weaveTenantsFile, "-o", "resources"},
		want: []string{"--output selects what --export prints"},
	}, {
		name: "dry run with export",
		args: []string{"-f", weaveTenantsFile, "--export", "--dry-run"},
		want: []string{"--dry-run and --export cannot be combined"},
	}, {
		name: "prune is not offered",
		args: []string{"-f", weaveTenantsFile, "--prune"},
		want: []string{"unknown flag: --prune"},
	}, {
		name: "ClusterRole outside the allow-list",
		args: []string{"-f", weaveTenantsFile, "--export", "--allowed-cluster-roles", "admin,edit"},
		want: []string{`tenants[0].deploymentRBAC.bindRoles[0].name: ClusterRole "view" is not allowed`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, "", append([]string{"create", "tenants"}, tt.args...)...)
			expectCode(t, got, ExitInputError)
			if got.stdout != "" {
				t.Errorf("stdout is not empty:\n%s", got.stdout)
			}
			for _, want := range tt.want {
				if !strings.Contains(got.stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, got.stderr)
				}
			}
		})
	}
}

func TestApplyWithoutCluster(t *testing.T) {
	kubeconfig := writeFile(t, t.TempDir(), "kubeconfig", "apiVersion: v1\nkind: Config\n")
	got := runCLI(t, "", "create", "tenants", "-f", weaveTenantsFile, "--kubeconfig", kubeconfig)
	expectCode(t, got, ExitViolations)
	if !strings.Contains(got.stderr, "load kubeconfig") {
		t.Errorf("stderr does not name the kubeconfig problem:\n%s", got.stderr)
	}
}

func TestVersion(t *testing.T) {
	got := runCLI(t, "", "version")
	expectCode(t, got, ExitOK)
	for _, want := range []string{"tdctl v0.0.0-test\n", "commit: 0123456789abcdef\n", "go: go1."} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("version output does not contain %q:\n%s", want, got.stdout)
		}
	}
}

func TestBuildInfoDefaults(t *testing.T) {
	resolved := BuildInfo{}.Resolve()
	if resolved.Version == "" || resolved.Commit == "" {
		t.Errorf("Resolve left fields empty: %+v", resolved)
	}
	kept := BuildInfo{Version: "v1.2.3", Commit: "abc"}.Resolve()
	if kept.Version != "v1.2.3" || kept.Commit != "abc" {
		t.Errorf("Resolve replaced linker values: %+v", kept)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		got := runCLI(t, "", "completion", shell)
		expectCode(t, got, ExitOK)
		if !strings.Contains(got.stdout, "tdctl") {
			t.Errorf("%s completion does not mention tdctl", shell)
		}
	}
}

func TestEveryFlagHasHelp(t *testing.T) {
	root := NewRootCommand(Streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, testBuild)
	var commands []*cobraCommand
	commands = append(commands, root)
	for len(commands) > 0 {
		cmd := commands[0]
		commands = append(commands[1:], cmd.Commands()...)
		for _, flags := range []*pflagSet{cmd.LocalFlags(), cmd.PersistentFlags()} {
			flags.VisitAll(func(f *pflagFlag) {
				if strings.TrimSpace(f.Usage) == "" {
					t.Errorf("%s --%s has no help text", cmd.CommandPath(), f.Name)
				}
			})
		}
	}
}
