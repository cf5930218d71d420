// Command tdctl is the Trusted Delivery command line tool. See
// internal/cli for its commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trusted-delivery/trusted-delivery/internal/cli"
)

// Set by the linker, for example
// -ldflags "-X main.version=v0.3.0 -X main.commit=$(git rev-parse HEAD)".
// When unset, tdctl version reads them from the Go build information.
var (
	version string
	commit  string
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	streams := cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
	code := cli.Run(ctx, os.Args[1:], streams, cli.BuildInfo{Version: version, Commit: commit})
	stop()
	os.Exit(code)
}
