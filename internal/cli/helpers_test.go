package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata with the current output")

// testBuild is the build information that tests pass, so that reports are
// the same on every machine.
var testBuild = BuildInfo{Version: "v0.0.0-test", Commit: "0123456789abcdef"}

// cliResult is the outcome of one tdctl run.
type cliResult struct {
	code   int
	stdout string
	stderr string
}

// testHelper is the part of *testing.T and GinkgoT() that runCLI needs.
type testHelper interface {
	Helper()
}

// runCLI runs tdctl with args and stdin.
func runCLI(t testHelper, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, Streams{In: strings.NewReader(stdin), Out: &stdout, Err: &stderr}, testBuild)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// expectCode fails the test unless the run exited with code.
func expectCode(t *testing.T, got cliResult, code int) {
	t.Helper()
	if got.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, code, got.stdout, got.stderr)
	}
}

// compareGolden compares got with the golden file testdata/name, or
// rewrites the file when -update is set.
func compareGolden(t *testing.T, path string, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s (run the test with -update to create it): %v", path, err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run the test with -update to accept it):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the first lines that differ between want and got.
func lineDiff(want, got string) string {
	wantLines, gotLines := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	reported := 0
	for i := 0; i < max(len(wantLines), len(gotLines)) && reported < 10; i++ {
		var w, g string
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if w != g {
			fmt.Fprintf(&out, "line %d:\n  want: %s\n  got:  %s\n", i+1, w, g)
			reported++
		}
	}
	return out.String()
}

// testdataPath returns the absolute path of a file in testdata, for tests
// that change the working directory.
func testdataPath(t *testing.T, name string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// writeFile writes content to name under dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type (
	cobraCommand = cobra.Command
	pflagSet     = pflag.FlagSet
	pflagFlag    = pflag.Flag
)
