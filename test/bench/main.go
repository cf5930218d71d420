// Command bench measures the enforcement webhook end to end. It sends
// AdmissionReview requests over HTTPS on loopback to the Enforcer on a
// controller-runtime webhook server, for 1, 10, 50 and 150 active policies,
// on a typical Deployment and on one of about 200 KiB. In the same run it
// measures two
// baselines on the same policies and objects: the floor (the policies'
// prepared OPA queries evaluated directly, one after the other) and the
// naive way (every policy parsed and compiled on every request). It prints a
// markdown table.
//
// Run from the repository root:
//
//	go run ./test/bench
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/trusted-delivery/trusted-delivery/internal/admission"
)

// options are the command-line settings.
type options struct {
	policyCounts []int
	requests     int
	largeDivisor int
	naiveCap     int
	cpuProfile   string
	gcPercent    int
}

func main() {
	var (
		counts string
		opts   options
	)
	flag.StringVar(&counts, "policies", "1,10,50,150", "Comma-separated numbers of active policies to measure.")
	flag.IntVar(&opts.requests, "requests", 2000, "Requests per case on the typical Deployment, after a warm-up of a tenth of them.")
	flag.IntVar(&opts.largeDivisor, "large-divisor", 10, "The large Deployment gets --requests divided by this.")
	flag.IntVar(&opts.naiveCap, "naive-requests", 20, "Requests per case of the naive baseline, which compiles every policy per request.")
	flag.StringVar(&opts.cpuProfile, "cpuprofile-prefix", "", "Write a CPU profile of each case's webhook requests, not of the baselines, to <prefix>-<object>-<policies>.pprof.")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	// The same garbage collection target as the manager, unless GOGC is set.
	opts.gcPercent = admission.SetGCPercent(admission.DefaultGCPercent, false)

	for _, field := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "invalid --policies entry %q: use positive integers\n", field)
			os.Exit(2)
		}
		opts.policyCounts = append(opts.policyCounts, n)
	}
	if err := run(opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// row is the measurement of one object and policy count.
type row struct {
	object   string
	size     int
	policies int
	webhook  latencies
	floor    latencies
	naive    latencies
	allocs   float64
	peakRSS  int64
}

func run(opts options, out io.Writer) error {
	library, err := loadLibrary()
	if err != nil {
		return err
	}
	server, err := startServer()
	if err != nil {
		return err
	}
	defer server.stop()

	profile := &profiler{prefix: opts.cpuProfile}
	defer profile.stop()

	var rows []row
	for _, object := range benchObjects() {
		requests := opts.requests
		if object.name != "typical" {
			requests = max(opts.requests/opts.largeDivisor, 10)
		}
		for _, n := range opts.policyCounts {
			policies := benchPolicies(library, n)
			r := row{object: object.name, size: object.size, policies: n}
			server.load(policies)
			body, err := reviewBody(object.obj)
			if err != nil {
				return err
			}
			resetPeakRSS()
			if err := profile.start(object.name, n); err != nil {
				return err
			}
			r.webhook, r.allocs, err = server.measure(body, requests)
			if stopErr := profile.stop(); err == nil {
				err = stopErr
			}
			if err != nil {
				return fmt.Errorf("%s Deployment, %d policies: %w", object.name, n, err)
			}
			r.peakRSS = peakRSS()
			if r.floor, err = measureFloor(policies, object.obj, requests); err != nil {
				return err
			}
			if r.naive, err = measureNaive(policies, object.obj, min(requests, opts.naiveCap)); err != nil {
				return err
			}
			rows = append(rows, r)
			fmt.Fprintf(os.Stderr, "measured %s Deployment with %d policies\n", object.name, n)
		}
	}
	printTable(out, rows, opts.gcPercent)
	return nil
}

func printTable(out io.Writer, rows []row, gcPercent int) {
	fmt.Fprintf(out, "Go %s, GOMAXPROCS %d, GOGC %d, %s/%s\n\n", runtime.Version(), runtime.GOMAXPROCS(0), gcPercent, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintln(out, "| Object | Policies | p50 | p99 | Reviews/s | Allocs/review | Peak RSS | Floor p50 | Floor p99 | Naive p50 | Webhook / floor | Naive / webhook |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(out, "| %s (%d KiB) | %d | %s | %s | %.0f | %.0f | %d MiB | %s | %s | %s | %.2fx | %.1fx |\n",
			r.object, r.size>>10, r.policies,
			duration(r.webhook.percentile(50)), duration(r.webhook.percentile(99)),
			r.webhook.perSecond(), r.allocs, r.peakRSS>>20,
			duration(r.floor.percentile(50)), duration(r.floor.percentile(99)),
			duration(r.naive.percentile(50)),
			r.webhook.mean().Seconds()/r.floor.mean().Seconds(),
			r.naive.mean().Seconds()/r.webhook.mean().Seconds())
	}
}

// latencies are the durations of the requests of one case.
type latencies []time.Duration

func (l latencies) percentile(p int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	sorted := slices.Clone(l)
	slices.Sort(sorted)
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func (l latencies) mean() time.Duration {
	if len(l) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return sum / time.Duration(len(l))
}

// perSecond returns the reviews per second of one client that sends each
// request after the response to the previous one.
func (l latencies) perSecond() float64 {
	if m := l.mean(); m > 0 {
		return float64(time.Second) / float64(m)
	}
	return 0
}

func duration(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}

// resetPeakRSS resets VmHWM of the process (Linux 4.0 and later), so that
// the next peak belongs to the case being measured. Elsewhere it does
// nothing and the peak covers the whole run.
func resetPeakRSS() {
	runtime.GC()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns VmHWM of the process in bytes, or 0 where
// /proc/self/status does not exist.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kib << 10
			}
		}
	}
	return 0
}
