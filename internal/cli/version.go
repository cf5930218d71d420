package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// BuildInfo identifies the tdctl build.
type BuildInfo struct {
	// Version is the release, such as v0.3.0.
	Version string
	// Commit is the Git commit the binary was built from.
	Commit string
}

// Resolve fills in what the linker flags did not set from the Go build
// information: the module version (set by `go install module@version`) and
// the VCS revision (set when building inside a Git checkout).
func (b BuildInfo) Resolve() BuildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b.withDefaults()
	}
	if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	if b.Commit == "" {
		var revision string
		var modified bool
		for _, setting := range info.Settings {
			switch setting.Key {
			case "vcs.revision":
				revision = setting.Value
			case "vcs.modified":
				modified = setting.Value == "true"
			}
		}
		if revision != "" && modified {
			revision += "-dirty"
		}
		b.Commit = revision
	}
	return b.withDefaults()
}

func (b BuildInfo) withDefaults() BuildInfo {
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

func newVersionCommand(streams Streams, build BuildInfo) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of tdctl",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			resolved := build.Resolve()
			fmt.Fprintf(streams.Out, "tdctl %s\ncommit: %s\ngo: %s %s/%s\n",
				resolved.Version, resolved.Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
