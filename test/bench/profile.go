package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// profiler writes a CPU profile of each case's webhook requests to
// <prefix>-<object>-<policies>.pprof. With an empty prefix it does nothing.
type profiler struct {
	prefix string
	file   *os.File
}

func (p *profiler) start(object string, policies int) error {
	if p.prefix == "" {
		return nil
	}
	name := fmt.Sprintf("%s-%s-%d.pprof", p.prefix, object, policies)
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("start CPU profile %s: %w", name, err)
	}
	p.file = f
	return nil
}

func (p *profiler) stop() error {
	if p.file == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := p.file.Close()
	p.file = nil
	return err
}
