package report

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
)

// SinkOptions are the manager flags of the violation sinks.
type SinkOptions struct {
	// ElasticsearchAddresses are comma-separated node URLs. Empty disables
	// the Elasticsearch sink.
	ElasticsearchAddresses string
	ElasticsearchIndex     string
	ElasticsearchMode      string
	// ElasticsearchCredentialsSecret is "namespace/name" of the Secret with
	// the credentials. Empty connects without authentication.
	ElasticsearchCredentialsSecret string
	// FluxNotificationAddress is the notification-controller events URL.
	// Empty disables the Flux sink.
	FluxNotificationAddress string
	// ViolationsFile is the JSON lines file. Empty disables the file sink.
	ViolationsFile string
	// QueueSize is the queue length of each sink.
	QueueSize int
	// AdmissionReportMaxResults is the number of admission violations kept
	// per namespace in the admission reports.
	AdmissionReportMaxResults int
}

// BindFlags registers the sink flags on fs.
func (o *SinkOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.ElasticsearchAddresses, "es-address", "",
		"Comma-separated Elasticsearch URLs, for example https://es.example:9200. Empty disables the Elasticsearch sink.")
	fs.StringVar(&o.ElasticsearchIndex, "es-index", DefaultElasticsearchIndex,
		"Elasticsearch index of the violation documents; it is created with a mapping at start-up when missing.")
	fs.StringVar(&o.ElasticsearchMode, "es-mode", ElasticsearchModeInsert,
		"Elasticsearch write mode: insert (one document per violation) or upsert "+
			"(one document per policy, object, source and UTC day, with a count).")
	fs.StringVar(&o.ElasticsearchCredentialsSecret, "es-credentials-secret", "",
		"Secret namespace/name with the Elasticsearch credentials: keys username and password, or api-key; "+
			"ca.crt optionally. Empty connects without authentication.")
	fs.StringVar(&o.FluxNotificationAddress, "flux-notification-address", "",
		"URL of the Flux notification-controller events endpoint, for example "+
			"http://notification-controller.flux-system.svc.cluster.local./ . Violations of objects that a "+
			"Kustomization or HelmRelease applied are sent as events about it. Empty disables the Flux sink.")
	fs.StringVar(&o.ViolationsFile, "violations-file", "",
		"Path of a file to append one JSON document per violation to, for log shippers. Empty disables the file sink.")
	fs.IntVar(&o.QueueSize, "sink-queue-size", defaultQueueSize,
		"Maximum number of violations waiting in each sink's queue; more are dropped and counted in "+
			"trusted_delivery_sink_dropped_records_total.")
	fs.IntVar(&o.AdmissionReportMaxResults, "admission-report-max-results", DefaultAdmissionMaxResults,
		"Number of the latest admission violations kept in the trusted-delivery-admission report of each namespace.")
}

// NewSinks builds the admission report sink and the sinks that o enables,
// adds each to the manager, which runs them on every replica, and returns
// them as one Sink for the audit and the admission webhook. It reads the
// Elasticsearch credentials Secret with the manager's uncached reader.
func NewSinks(ctx context.Context, mgr manager.Manager, o SinkOptions) (Sinks, error) {
	if err := RegisterScheme(mgr.GetScheme()); err != nil {
		return nil, err
	}
	admissionReports := NewAdmissionReportSink(mgr.GetClient(), mgr.GetAPIReader(), kube.FieldManager,
		o.AdmissionReportMaxResults, o.QueueSize)
	sinks := Sinks{admissionReports}

	if o.ElasticsearchAddresses != "" {
		cfg := ElasticsearchConfig{
			Addresses: splitList(o.ElasticsearchAddresses),
			Index:     o.ElasticsearchIndex,
			Mode:      o.ElasticsearchMode,
			QueueSize: o.QueueSize,
		}
		if o.ElasticsearchCredentialsSecret != "" {
			if err := ElasticsearchCredentials(ctx, mgr.GetAPIReader(), o.ElasticsearchCredentialsSecret, &cfg); err != nil {
				return nil, err
			}
		}
		es, err := NewElasticsearchSink(cfg)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, es)
	}
	if o.FluxNotificationAddress != "" {
		instance := os.Getenv("POD_NAME")
		if instance == "" {
			instance, _ = os.Hostname()
		}
		flux, err := NewFluxSink(FluxConfig{Address: o.FluxNotificationAddress, ReportingInstance: instance, QueueSize: o.QueueSize})
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, flux)
	}
	if o.ViolationsFile != "" {
		file, err := NewFileSink(o.ViolationsFile, o.QueueSize)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, file)
	}

	for _, sink := range sinks {
		runnable, ok := sink.(manager.Runnable)
		if !ok {
			continue
		}
		if err := mgr.Add(runnable); err != nil {
			return nil, fmt.Errorf("add the %T violation sink to the manager: %w", sink, err)
		}
	}
	return sinks, nil
}

// RegisterScheme registers the OpenReports kinds in scheme unless it has
// them. Call it before the manager starts, because a scheme is not safe for
// concurrent writes.
func RegisterScheme(scheme *runtime.Scheme) error {
	gvk := schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: "Report"}
	if scheme.Recognizes(gvk) {
		return nil
	}
	if err := AddToScheme(scheme); err != nil {
		return fmt.Errorf("register the OpenReports kinds: %w", err)
	}
	return nil
}

// CacheByObject returns cache options that keep only the operator's own
// Reports and ClusterReports in the manager's cache, so that the reports of
// other tools are not held in memory. Merge them into
// ctrl.Options.Cache.ByObject; the scheme passed to ctrl.NewManager must
// contain the OpenReports kinds (RegisterScheme).
func CacheByObject() map[client.Object]cache.ByObject {
	selector := labels.SelectorFromSet(labels.Set{tenancyv1alpha1.ManagedByLabel: tenancyv1alpha1.ManagedByValue})
	return map[client.Object]cache.ByObject{
		&openreportsv1alpha1.Report{}:        {Label: selector},
		&openreportsv1alpha1.ClusterReport{}: {Label: selector},
	}
}

func splitList(s string) []string {
	var values []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			values = append(values, part)
		}
	}
	return values
}
