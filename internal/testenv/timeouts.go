package testenv

import "time"

// Start and stop timeouts of etcd and kube-apiserver, generous because CI
// machines have 2 cores and run several test packages at once.
const (
	defaultStartTimeout = 2 * time.Minute
	defaultStopTimeout  = time.Minute
)
