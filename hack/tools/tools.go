//go:build tools

// Package tools pins the programs that the Makefile builds into bin/: the
// local control plane (kube-apiserver, etcd, kubectl) and controller-gen.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
