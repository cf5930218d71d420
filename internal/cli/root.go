// Package cli implements tdctl, the Trusted Delivery command line tool:
// `tdctl create tenants` turns a Weave GitOps tenants file into Workspaces,
// and `tdctl validate` checks manifests against policies before they reach
// a cluster.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes of tdctl.
const (
	// ExitOK: the command succeeded; for validate, no violation fails.
	ExitOK = 0
	// ExitViolations: validate found violations of enforced policies at or
	// above --fail-on. create tenants returns it when the cluster rejects a
	// Workspace or cannot be reached.
	ExitViolations = 1
	// ExitInputError: invalid flags or arguments, unreadable or invalid
	// input files, or policies that do not compile.
	ExitInputError = 2
)

// Streams are the standard streams of a command.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// exitError ends the command with an exit code. A nil err exits with the
// code and prints nothing more, because the command already reported.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// inputError returns an error that exits with ExitInputError.
func inputError(err error) error {
	return &exitError{code: ExitInputError, err: err}
}

// inputErrorf formats an error that exits with ExitInputError.
func inputErrorf(format string, args ...any) error {
	return inputError(fmt.Errorf(format, args...))
}

// Run runs tdctl with the arguments (without the program name) and returns
// the exit code.
func Run(ctx context.Context, args []string, streams Streams, build BuildInfo) int {
	root := NewRootCommand(streams, build)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if exit.err != nil {
			fmt.Fprintf(streams.Err, "Error: %v\n", exit.err)
		}
		return exit.code
	}
	// Errors that cobra returns itself are about flags and arguments.
	fmt.Fprintf(streams.Err, "Error: %v\nRun '%s --help' for usage.\n", err, commandPath(root, args))
	return ExitInputError
}

// commandPath returns the path of the subcommand that args select, for the
// usage hint.
func commandPath(root *cobra.Command, args []string) string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return root.CommandPath()
	}
	return cmd.CommandPath()
}

// NewRootCommand returns the tdctl command with its subcommands.
func NewRootCommand(streams Streams, build BuildInfo) *cobra.Command {
	root := &cobra.Command{
		Use:   "tdctl",
		Short: "Manage Trusted Delivery tenants and check manifests against policies",
		Long: `tdctl is the command line tool of Trusted Delivery.

  tdctl create tenants  turns a Weave GitOps tenants file into Workspaces,
                        and applies them or prints them for Git.
  tdctl validate        checks Kubernetes manifests against Policies before
                        they reach a cluster, for CI and pre-commit hooks.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)

	cluster := &clusterFlags{}
	cluster.addFlags(root)

	create := &cobra.Command{
		Use:   "create",
		Short: "Create objects from files in other formats",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	create.AddCommand(newCreateTenantsCommand(streams, cluster))
	root.AddCommand(create)
	root.AddCommand(newValidateCommand(streams, cluster, build))
	root.AddCommand(newVersionCommand(streams, build))
	return root
}
