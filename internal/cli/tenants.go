package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
	"github.com/trusted-delivery/trusted-delivery/internal/tenantsfile"
)

// Values of create tenants --output.
const (
	tenantsOutputWorkspaces = "workspaces"
	tenantsOutputResources  = "resources"
)

// tenantsFieldManager is the server-side apply field manager of the
// Workspaces that create tenants applies.
const tenantsFieldManager = "tdctl"

type createTenantsOptions struct {
	fromFile            string
	export              bool
	output              string
	dryRun              bool
	forceConflicts      bool
	allowedClusterRoles []string
}

func newCreateTenantsCommand(streams Streams, cluster *clusterFlags) *cobra.Command {
	opts := &createTenantsOptions{}
	cmd := &cobra.Command{
		Use:   "tenants",
		Short: "Create Workspaces from a Weave GitOps tenants file",
		Long: `Create one Workspace per tenant of a tenants file written for the Weave GitOps
"gitops create tenants" command. The file is accepted unchanged.

Without --export the Workspaces are applied to the cluster of the current
kubeconfig context with server-side apply (field manager "tdctl"), and each is
reported as created, configured or unchanged. Nothing is ever deleted: a
tenant removed from the file keeps its Workspace until you delete it.

With --export the objects are printed as YAML for Git instead: the Workspaces,
or with --output resources the namespaces, ServiceAccounts, RBAC and tenancy
Policies that the operator creates from them.

Every problem in the file is reported at once, with its line and field path,
and the exit code is 2.`,
		Example: `  # Apply the tenants to the current cluster
  tdctl create tenants -f tenants.yaml

  # Show what would change, without writing
  tdctl create tenants -f tenants.yaml --dry-run

  # Write the Workspaces to Git
  tdctl create tenants -f tenants.yaml --export > clusters/prod/tenants.yaml

  # Write the plain objects that the operator would create
  tdctl create tenants -f tenants.yaml --export --output resources`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCreateTenants(cmd, streams, cluster, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.fromFile, "from-file", "f", "",
		`tenants file to read, or "-" for standard input (required)`)
	flags.BoolVar(&opts.export, "export", false,
		"print the objects as YAML on standard output instead of applying them")
	flags.StringVarP(&opts.output, "output", "o", tenantsOutputWorkspaces,
		`what --export prints: "workspaces" (one Workspace per tenant) or "resources" (the objects the operator creates from them)`)
	flags.BoolVar(&opts.dryRun, "dry-run", false,
		"apply with a server-side dry run and print a unified diff of each Workspace, without writing")
	flags.BoolVar(&opts.forceConflicts, "force-conflicts", false,
		"take over fields that another field manager owns, instead of failing on the conflict")
	flags.StringSliceVar(&opts.allowedClusterRoles, "allowed-cluster-roles", tenancy.DefaultAllowedClusterRoles,
		"ClusterRoles that tenants may bind, as the operator's --allowed-cluster-roles flag sets them; comma-separated")
	_ = cmd.MarkFlagRequired("from-file")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{tenantsOutputWorkspaces, tenantsOutputResources}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagFilename("from-file", "yaml", "yml")
	return cmd
}

func runCreateTenants(cmd *cobra.Command, streams Streams, cluster *clusterFlags, opts *createTenantsOptions) error {
	if err := opts.check(cmd); err != nil {
		return err
	}
	name, data, err := readInput(opts.fromFile, streams.In)
	if err != nil {
		return inputError(err)
	}
	file, err := tenantsfile.Load(name, data, tenantsfile.Options{AllowedClusterRoles: opts.allowedClusterRoles})
	if err != nil {
		return inputErrorf("invalid tenants file:\n%w", err)
	}
	workspaces := file.Workspaces()

	if opts.export {
		objects, err := exportedObjects(workspaces, opts)
		if err != nil {
			return err
		}
		return writeObjects(streams.Out, objects)
	}

	c, err := cluster.client()
	if err != nil {
		return &exitError{code: ExitViolations, err: err}
	}
	applier := &workspaceApplier{
		client:         c,
		out:            streams.Out,
		dryRun:         opts.dryRun,
		forceConflicts: opts.forceConflicts,
	}
	if err := applier.applyAll(cmd.Context(), workspaces); err != nil {
		return &exitError{code: ExitViolations, err: err}
	}
	return nil
}

func (o *createTenantsOptions) check(cmd *cobra.Command) error {
	if !slices.Contains([]string{tenantsOutputWorkspaces, tenantsOutputResources}, o.output) {
		return inputErrorf("invalid --output %q: use %s or %s", o.output, tenantsOutputWorkspaces, tenantsOutputResources)
	}
	if cmd.Flags().Changed("output") && !o.export {
		return inputErrorf("--output selects what --export prints; add --export, or leave --output out to apply the Workspaces")
	}
	if o.dryRun && o.export {
		return inputErrorf("--dry-run and --export cannot be combined: --export never talks to the cluster")
	}
	if o.forceConflicts && o.export {
		return inputErrorf("--force-conflicts and --export cannot be combined: --export never talks to the cluster")
	}
	return nil
}

// exportedObjects returns the objects that --export prints.
func exportedObjects(workspaces []tenancyv1alpha1.Workspace, opts *createTenantsOptions) ([]*unstructured.Unstructured, error) {
	var objects []client.Object
	for i := range workspaces {
		ws := &workspaces[i]
		if opts.output == tenantsOutputWorkspaces {
			objects = append(objects, ws)
			continue
		}
		generated, err := tenancy.Generate(ws, tenancy.Options{AllowedClusterRoles: opts.allowedClusterRoles})
		if err != nil {
			return nil, inputErrorf("generate the objects of tenant %s: %w", ws.Name, err)
		}
		objects = append(objects, generated...)
	}
	return toUnstructured(objects)
}

// readInput reads the file at path, or standard input for "-". It returns
// the name to use in messages.
func readInput(path string, stdin io.Reader) (string, []byte, error) {
	if path == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return "", nil, fmt.Errorf("read standard input: %w", err)
		}
		return "<stdin>", data, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", path, trimPathError(err))
	}
	return path, data, nil
}

// trimPathError drops the path from an *os.PathError, for messages that
// already name the file.
func trimPathError(err error) error {
	if pathErr, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s", strings.TrimSpace(pathErr.Err.Error()))
	}
	return err
}
