package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// Values of validate --output.
const (
	outputText  = "text"
	outputJSON  = "json"
	outputSARIF = "sarif"
	outputJUnit = "junit"
)

var (
	validateOutputs = []string{outputText, outputJSON, outputSARIF, outputJUnit}
	validateModes   = []string{string(policy.ModeAudit), string(policy.ModeAdmission)}
	severities      = []string{pacv2beta3.SeverityLow, pacv2beta3.SeverityMedium, pacv2beta3.SeverityHigh}
)

type validateOptions struct {
	policyDirs  []string
	fromCluster bool
	mode        string
	output      string
	failOn      string
	sarifFile   string
	engine      policy.Options
}

func newValidateCommand(streams Streams, cluster *clusterFlags, build BuildInfo) *cobra.Command {
	opts := &validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate [flags] PATH...",
		Short: "Check Kubernetes manifests against policies before they reach a cluster",
		Long: `Check Kubernetes manifests against Policies, as the operator's audit or
admission webhook would, without a cluster.

Each PATH is a manifest file, a directory (searched recursively for *.yaml,
*.yml and *.json files), a kustomization directory or file (built with
kustomize), or "-" for standard input. Files may hold several YAML documents;
documents that are not Kubernetes objects are skipped with a note.

Policies come from --policies directories (Policy, PolicySet and PolicyConfig
manifests of pac.weave.works v2beta2 or v2beta3) and from the cluster with
--from-cluster; both may be combined, and files win over the cluster. PolicySets
and PolicyConfigs apply as in the cluster. Namespace labels, which decide the
workspace of an object for PolicyConfigs, come from Namespace and Workspace
manifests in the inputs, and from the cluster with --from-cluster.

Exit codes: 0 when no violation fails, 1 when an enforced policy at or above
--fail-on is violated, 2 on invalid flags or input: unreadable files, invalid
YAML, a policy that does not compile, a missing policy directory, a policy
that could not be evaluated, or a cluster that --from-cluster cannot read.`,
		Example: `  # Check a repository against the policies in policies/
  tdctl validate --policies policies/ deploy/

  # Check a kustomize overlay against the policies of the current cluster
  tdctl validate --from-cluster overlays/production

  # Fail only on high severity, and write SARIF for code scanning
  tdctl validate --policies policies/ --fail-on high --output sarif . > tdctl.sarif`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(cmd.Context(), streams, cluster, build, opts, args)
		},
	}
	flags := cmd.Flags()
	flags.StringArrayVar(&opts.policyDirs, "policies", nil,
		"directory of Policy, PolicySet and PolicyConfig manifests, searched recursively; repeat for several")
	flags.BoolVar(&opts.fromCluster, "from-cluster", false,
		"also read Policies, PolicySets and PolicyConfigs from the cluster of the current kubeconfig context")
	flags.StringVar(&opts.mode, "mode", string(policy.ModeAudit),
		`evaluate the policies active in this mode: "audit" or "admission" (reviews as a CREATE request)`)
	flags.StringVarP(&opts.output, "output", "o", outputText,
		"report format: text, json, sarif (SARIF 2.1.0) or junit (JUnit XML)")
	flags.StringVar(&opts.failOn, "fail-on", pacv2beta3.SeverityLow,
		"lowest severity of an enforced policy's violation that makes the exit code 1: low, medium or high")
	flags.StringVar(&opts.sarifFile, "sarif-file", "",
		"also write the report as SARIF 2.1.0 to this file, for code scanning upload")
	flags.DurationVar(&opts.engine.Timeout, "policy-timeout", policy.DefaultTimeout,
		"maximum time to evaluate one policy on one object, as a Go duration such as 2s")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(validateOutputs, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions(validateModes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("fail-on", cobra.FixedCompletions(severities, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("policies")
	return cmd
}

func (o *validateOptions) check() error {
	switch {
	case !slices.Contains(validateOutputs, o.output):
		return inputErrorf("invalid --output %q: use one of %s", o.output, strings.Join(validateOutputs, ", "))
	case !slices.Contains(validateModes, o.mode):
		return inputErrorf("invalid --mode %q: use one of %s", o.mode, strings.Join(validateModes, ", "))
	case !slices.Contains(severities, o.failOn):
		return inputErrorf("invalid --fail-on %q: use one of %s", o.failOn, strings.Join(severities, ", "))
	case len(o.policyDirs) == 0 && !o.fromCluster:
		return inputErrorf("no policies to check against: set --policies DIR, --from-cluster, or both")
	case o.engine.Timeout <= 0:
		return inputErrorf("invalid --policy-timeout %s: it must be positive", o.engine.Timeout)
	}
	return nil
}

func runValidate(ctx context.Context, streams Streams, cluster *clusterFlags, build BuildInfo,
	opts *validateOptions, args []string,
) error {
	if err := opts.check(); err != nil {
		return err
	}
	in, err := loadInputs(args, streams.In, opts.policyDirs)
	if err != nil {
		return inputError(err)
	}

	bundle := newPolicyBundle()
	for _, dir := range opts.policyDirs {
		if err := bundle.loadDirectory(dir); err != nil {
			return inputError(err)
		}
	}
	var c client.Client
	if opts.fromCluster {
		if c, err = cluster.client(); err != nil {
			return inputError(err)
		}
		if err := bundle.loadCluster(ctx, c); err != nil {
			return inputError(err)
		}
	}
	if len(bundle.policies) == 0 {
		return inputErrorf("no Policy found in %s", policySources(opts))
	}
	engine, err := bundle.newEngine(opts.engine)
	if err != nil {
		return inputErrorf("invalid policies:\n%w", err)
	}
	for _, note := range append(in.notes, bundle.notes...) {
		fmt.Fprintf(streams.Err, "note: %s\n", note)
	}

	namespaces := newNamespaceLabels(in.manifests, c)
	report := &validationReport{
		mode:     policy.Mode(opts.mode),
		failOn:   opts.failOn,
		files:    in.files,
		policies: engine.ActivePolicies(policy.Mode(opts.mode)),
		tool:     build.Resolve(),
	}
	for _, m := range in.manifests {
		labels, err := namespaces.labels(ctx, m.object.GetNamespace())
		if err != nil {
			return inputError(err)
		}
		review := policy.ReviewFromObject(m.object)
		if report.mode == policy.ModeAdmission {
			review.Operation = "CREATE"
		}
		results := engine.Evaluate(ctx, report.mode, review, policy.Subject{Object: m.object, NamespaceLabels: labels})
		report.objects = append(report.objects, checkedObject{manifest: m, results: results})
	}
	if err := ctx.Err(); err != nil {
		return inputErrorf("validation interrupted: %w", err)
	}
	report.sortObjects()

	if err := report.write(streams.Out, opts.output); err != nil {
		return inputErrorf("write the %s report: %w", opts.output, err)
	}
	if opts.sarifFile != "" {
		if err := report.writeFile(opts.sarifFile, outputSARIF); err != nil {
			return inputErrorf("write the SARIF report to %s: %w", opts.sarifFile, err)
		}
	}
	summary := report.summary()
	switch {
	case summary.Errors > 0:
		return &exitError{code: ExitInputError, err: fmt.Errorf("%d policy evaluations failed; see the report", summary.Errors)}
	case summary.Failing > 0:
		return &exitError{code: ExitViolations}
	}
	return nil
}

// policySources describes where policies were looked for, for messages.
func policySources(opts *validateOptions) string {
	var sources []string
	if len(opts.policyDirs) > 0 {
		sources = append(sources, strings.Join(opts.policyDirs, ", "))
	}
	if opts.fromCluster {
		sources = append(sources, "the cluster")
	}
	return strings.Join(sources, " or ")
}

// writeFile writes the report in format to path.
func (r *validationReport) writeFile(path, format string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.write(f, format); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// namespaceLabels returns the labels of namespaces: from Namespace
// manifests in the inputs, then the tenant label of the Workspaces in the
// inputs, then, when a cluster client is set, from the cluster.
type namespaceLabels struct {
	known   map[string]map[string]string
	cluster client.Client
}

func newNamespaceLabels(manifests []*manifest, c client.Client) *namespaceLabels {
	n := &namespaceLabels{known: map[string]map[string]string{}, cluster: c}
	for _, m := range manifests {
		gvk := m.object.GroupVersionKind()
		if gvk.Group == "" && gvk.Kind == "Namespace" {
			n.known[m.object.GetName()] = m.object.GetLabels()
		}
	}
	for _, m := range manifests {
		if m.object.GroupVersionKind() != tenancyv1alpha1.GroupVersion.WithKind("Workspace") {
			continue
		}
		ws := &tenancyv1alpha1.Workspace{}
		if runtime.DefaultUnstructuredConverter.FromUnstructured(m.object.Object, ws) != nil {
			continue
		}
		for _, namespace := range ws.Spec.Namespaces {
			if _, ok := n.known[namespace]; !ok {
				n.known[namespace] = map[string]string{tenancyv1alpha1.TenantLabel: ws.Name}
			}
		}
	}
	return n
}

func (n *namespaceLabels) labels(ctx context.Context, namespace string) (map[string]string, error) {
	if namespace == "" {
		return nil, nil
	}
	if labels, ok := n.known[namespace]; ok {
		return labels, nil
	}
	if n.cluster == nil {
		return nil, nil
	}
	ns := &corev1.Namespace{}
	err := n.cluster.Get(ctx, client.ObjectKey{Name: namespace}, ns)
	switch {
	case err == nil:
		n.known[namespace] = ns.Labels
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
		// A namespace that does not exist yet has no labels; without
		// permission to read it the PolicyConfigs that match by workspace
		// cannot apply either way.
		n.known[namespace] = nil
	default:
		return nil, fmt.Errorf("get the labels of namespace %s: %w", namespace, err)
	}
	return n.known[namespace], nil
}
