// Command audit measures audit scans on a local control plane (envtest).
// For each number of Deployments it reports the objects audited per second
// and the peak RSS of this process, with the baseline policy library. It
// also measures the floor: the same objects evaluated with the same engine
// and worker count after they were listed into memory, so that no listing,
// aggregation or writes are timed.
//
// Run from the repository root (the binaries come from bin/):
//
//	go run ./test/bench/audit -objects 1000,10000
//
// It prints a Markdown table for docs/benchmarks.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/config/policies"
	"github.com/trusted-delivery/trusted-delivery/internal/audit"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
)

type options struct {
	objects    []int
	namespaces int
	workers    int
	pageSize   int64
	cpuProfile string
	verbose    bool
}

func main() {
	var opts options
	var objects string
	flag.StringVar(&objects, "objects", "1000,10000", "Comma-separated numbers of Deployments to audit, in increasing order.")
	flag.IntVar(&opts.namespaces, "namespaces", 10, "Number of namespaces the Deployments are spread over.")
	flag.IntVar(&opts.workers, "workers", audit.DefaultWorkers, "Audit workers (--audit-workers).")
	flag.Int64Var(&opts.pageSize, "page-size", audit.DefaultPageSize, "Objects per list call (--audit-page-size).")
	flag.BoolVar(&opts.verbose, "v", false, "Log the audit's debug messages, with the duration of its phases, to stderr.")
	flag.StringVar(&opts.cpuProfile, "cpuprofile", "", "Write a CPU profile of the audit scans to this file.")
	flag.Parse()
	for part := range strings.SplitSeq(objects, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "invalid -objects %q: use positive numbers separated by commas\n", objects)
			os.Exit(2)
		}
		opts.objects = append(opts.objects, n)
	}
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(opts options) (err error) {
	ctx := context.Background()
	level := zapcore.ErrorLevel
	if opts.verbose {
		level = zapcore.DebugLevel
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	ctx = ctrl.LoggerInto(ctx, ctrl.Log.WithName("bench"))
	env := testenv.New(testenv.Options{})
	env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, filepath.Join(testenv.RepoRoot(), "test", "crds", "openreports"))
	cfg, err := testenv.Start(env)
	if err != nil {
		return fmt.Errorf("start the control plane: %w", err)
	}
	defer func() {
		err = errors.Join(err, env.Stop())
	}()
	// The benchmark creates thousands of objects. The default client rate
	// limit would measure the limiter.
	cfg.QPS, cfg.Burst = 500, 1000

	scheme := kube.NewScheme()
	if err := report.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}

	engine := policy.NewEngine(policy.Options{})
	if err := loadBaseline(ctx, c, engine); err != nil {
		return err
	}
	engine.MarkSynced()
	active := engine.ActivePolicies(policy.ModeAudit)
	deploymentPolicies := 0
	for i := range active {
		if appliesToDeployments(&active[i]) {
			deploymentPolicies++
		}
	}

	auditor := &audit.Auditor{
		Engine:    engine,
		Client:    c,
		APIReader: c,
		Dynamic:   dyn,
		Discovery: disc,
		Reports:   &report.ReportWriter{Client: c, Reader: c, FieldManager: audit.FieldManager},
		Options:   audit.Options{Workers: opts.workers, PageSize: opts.pageSize},
	}

	fmt.Printf("Go %s, GOMAXPROCS %d, %d audit workers, page size %d, %d audit policies (%d apply to Deployments), %d namespaces\n\n",
		runtime.Version(), runtime.GOMAXPROCS(0), opts.workers, opts.pageSize, len(active), deploymentPolicies, opts.namespaces)
	fmt.Println("| Deployments | Audit time | Audit objects/s | Peak RSS | Floor time | Floor objects/s | Violations |")
	fmt.Println("|---|---|---|---|---|---|---|")
	created := 0
	for _, n := range opts.objects {
		if err := createDeployments(ctx, c, opts.namespaces, created, n); err != nil {
			return err
		}
		created = max(created, n)

		row, err := measure(ctx, auditor, dyn, opts.workers, opts.cpuProfile)
		if err != nil {
			return err
		}
		fmt.Printf("| %d | %s | %.0f | %d MiB | %s | %.0f | %d |\n",
			n, row.auditTime.Round(time.Millisecond), float64(row.objects)/row.auditTime.Seconds(), row.peakRSS>>20,
			row.floorTime.Round(time.Millisecond), float64(row.objects)/row.floorTime.Seconds(), row.violations)
	}
	return nil
}

// loadBaseline creates the baseline library's policies and PolicySet in
// the cluster and loads them into the engine.
func loadBaseline(ctx context.Context, c client.Client, engine *policy.Engine) error {
	paths, err := fs.Glob(policies.Manifests, "*.yaml")
	if err != nil {
		return err
	}
	var sets []pacv2beta2.PolicySet
	for _, path := range paths {
		data, err := policies.Manifests.ReadFile(path)
		if err != nil {
			return err
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(data, &meta); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
		switch meta.Kind {
		case "PolicySet":
			set := pacv2beta2.PolicySet{}
			if err := yaml.Unmarshal(data, &set); err != nil {
				return fmt.Errorf("decode %s: %w", path, err)
			}
			sets = append(sets, set)
		case "Policy":
			p := &pacv2beta3.Policy{}
			if err := yaml.Unmarshal(data, p); err != nil {
				return fmt.Errorf("decode %s: %w", path, err)
			}
			if err := c.Create(ctx, p); err != nil {
				return fmt.Errorf("create Policy %s: %w", p.Name, err)
			}
			engine.UpsertPolicy(p)
		}
	}
	engine.SetPolicySets(sets)
	return nil
}

func appliesToDeployments(p *pacv2beta3.Policy) bool {
	kinds := p.Spec.Targets.Kinds
	if len(kinds) == 0 {
		return true
	}
	for _, k := range kinds {
		if k == "Deployment" {
			return true
		}
	}
	return false
}

// createDeployments creates Deployments from index from up to to, spread
// over the namespaces, with 8 concurrent requests.
func createDeployments(ctx context.Context, c client.Client, namespaces, from, to int) error {
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)}}
		if err := c.Create(ctx, ns); client.IgnoreAlreadyExists(err) != nil {
			return err
		}
	}
	indexes := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range indexes {
				if err := c.Create(ctx, deployment(fmt.Sprintf("bench-%d", i%namespaces), i)); err != nil {
					errs <- fmt.Errorf("create Deployment %d: %w", i, err)
					return
				}
			}
		})
	}
	var err error
	for i := from; i < to && err == nil; i++ {
		select {
		case indexes <- i:
		case err = <-errs:
		}
	}
	close(indexes)
	wg.Wait()
	close(errs)
	return errors.Join(err, <-errs)
}

// deployment returns a two-container Deployment. Every other one misses
// resource limits and probes and runs as root, so that about half of the
// objects violate several policies.
func deployment(namespace string, i int) *appsv1.Deployment {
	name := fmt.Sprintf("app-%05d", i)
	labels := map[string]string{"app": name}
	sloppy := i%2 == 1
	containers := make([]corev1.Container, 2)
	for c := range containers {
		container := corev1.Container{
			Name:  fmt.Sprintf("c%d", c),
			Image: fmt.Sprintf("registry.example/team/app-%d:1.%d.0", c, i%7),
			Env:   []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "INDEX", Value: strconv.Itoa(i)}},
			Ports: []corev1.ContainerPort{{ContainerPort: 8080 + int32(c)}},
		}
		if !sloppy {
			container.Resources = corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			}
			container.SecurityContext = &corev1.SecurityContext{
				RunAsNonRoot:             ptr.To(true),
				ReadOnlyRootFilesystem:   ptr.To(true),
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}
			probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intOrString(8080 + c)}}}
			container.LivenessProbe, container.ReadinessProbe = probe, probe
		}
		containers[c] = container
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: containers},
			},
		},
	}
}

type measurement struct {
	objects    int
	violations int64
	auditTime  time.Duration
	floorTime  time.Duration
	peakRSS    int64
}

// measure runs one audit scan and then the floor over the same objects.
func measure(ctx context.Context, auditor *audit.Auditor, dyn dynamic.Interface, workers int, cpuProfile string) (measurement, error) {
	var m measurement
	debug.FreeOSMemory()
	if err := resetPeakRSS(); err != nil {
		return m, err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return m, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return m, err
		}
	}
	start := time.Now()
	results, err := auditor.Run(ctx)
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return m, fmt.Errorf("audit scan: %w", err)
	}
	m.auditTime = time.Since(start)
	if m.peakRSS, err = peakRSS(); err != nil {
		return m, err
	}
	m.objects = results.Objects()
	for _, count := range results.PolicyCounts() {
		m.violations += count.Violations
	}

	// The floor: list everything first (not timed), then evaluate.
	list, err := dyn.Resource(appsv1.SchemeGroupVersion.WithResource("deployments")).List(ctx, metav1.ListOptions{})
	if err != nil {
		return m, fmt.Errorf("list Deployments for the floor: %w", err)
	}
	objects := make(chan *unstructured.Unstructured)
	var wg sync.WaitGroup
	start = time.Now()
	for range workers {
		wg.Go(func() {
			for obj := range objects {
				auditor.Engine.Evaluate(ctx, policy.ModeAudit, policy.ReviewFromObject(obj), policy.Subject{Object: obj})
			}
		})
	}
	for i := range list.Items {
		if list.Items[i].GetKind() == "" {
			list.Items[i].SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
		}
		objects <- &list.Items[i]
	}
	close(objects)
	wg.Wait()
	m.floorTime = time.Since(start)
	return m, nil
}

// resetPeakRSS resets VmHWM of this process (Linux, clear_refs value 5).
func resetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS through /proc/self/clear_refs: %w", err)
	}
	return nil
}

// peakRSS returns VmHWM of this process in bytes.
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", value, err)
			}
			return kib << 10, nil
		}
	}
	return 0, errors.New("VmHWM not found in /proc/self/status")
}

func intOrString(port int) intstr.IntOrString {
	return intstr.FromInt32(int32(port))
}
