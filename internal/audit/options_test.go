package audit

import (
	"flag"
	"slices"
	"testing"
	"time"

	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

func TestBindFlagsDefaults(t *testing.T) {
	var opts Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	opts.BindFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	opts.defaults()

	if opts.Interval != 24*time.Hour {
		t.Errorf("interval = %s, want 24h", opts.Interval)
	}
	if opts.Debounce != 30*time.Second {
		t.Errorf("debounce = %s, want 30s", opts.Debounce)
	}
	if opts.PageSize != 500 {
		t.Errorf("page size = %d, want 500", opts.PageSize)
	}
	if opts.Workers != 2 {
		t.Errorf("workers = %d, want 2", opts.Workers)
	}
	if opts.IncludeOwned {
		t.Error("owned objects are included by default")
	}
	if !slices.Equal(opts.ExcludedResources, DefaultExcludedResources) {
		t.Errorf("excluded resources = %q, want %q", opts.ExcludedResources, DefaultExcludedResources)
	}
	if opts.MaxResults != report.DefaultMaxResults {
		t.Errorf("max results = %d, want %d", opts.MaxResults, report.DefaultMaxResults)
	}
	if opts.EventRate != DefaultEventRate {
		t.Errorf("event rate = %v, want %v", opts.EventRate, DefaultEventRate)
	}
}

func TestBindFlagsExcludeResources(t *testing.T) {
	cases := []struct {
		value string
		want  []string
	}{
		{value: "secrets, events.events.k8s.io,", want: []string{"secrets", "events.events.k8s.io"}},
		// An empty value lists every resource, which nil would not.
		{value: "", want: []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			var opts Options
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			opts.BindFlags(fs)
			if err := fs.Parse([]string{"--audit-exclude-resources=" + tc.value}); err != nil {
				t.Fatal(err)
			}
			opts.defaults()
			if !slices.Equal(opts.ExcludedResources, tc.want) || opts.ExcludedResources == nil {
				t.Errorf("excluded resources = %q, want %q", opts.ExcludedResources, tc.want)
			}
		})
	}
}
