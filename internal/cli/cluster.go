package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trusted-delivery/trusted-delivery/internal/kube"
)

// defaultRequestTimeout bounds each request to the API server.
const defaultRequestTimeout = 30 * time.Second

// clusterFlags select the cluster that commands talk to, as kubectl does.
type clusterFlags struct {
	kubeconfig     string
	context        string
	requestTimeout time.Duration
}

func (f *clusterFlags) addFlags(cmd *cobra.Command) {
	flags := cmd.PersistentFlags()
	flags.StringVar(&f.kubeconfig, "kubeconfig", "",
		"path of the kubeconfig file; default: $KUBECONFIG, then ~/.kube/config")
	flags.StringVar(&f.context, "context", "",
		"kubeconfig context to use; default: the current context")
	flags.DurationVar(&f.requestTimeout, "request-timeout", defaultRequestTimeout,
		"maximum time for each request to the API server, as a Go duration such as 30s or 1m")
}

// restConfig loads the kubeconfig that the flags select.
func (f *clusterFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.Timeout = f.requestTimeout
	cfg.UserAgent = "tdctl"
	return cfg, nil
}

// client returns a client of the cluster that the flags select.
func (f *clusterFlags) client() (client.Client, error) {
	cfg, err := f.restConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("create a client for %s: %w", cfg.Host, err)
	}
	return c, nil
}
