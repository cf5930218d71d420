package report

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []map[string]any
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var line map[string]any
		if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
			t.Errorf("line %q is not a JSON object: %v", scanner.Text(), err)
		}
		lines = append(lines, line)
	}
	return lines
}

func TestFileSinkAppendsJSONLines(t *testing.T) {
	g := NewWithT(t)
	path := filepath.Join(t.TempDir(), "violations.jsonl")
	g.Expect(os.WriteFile(path, []byte(`{"existing":true}`+"\n"), 0o600)).To(Succeed())
	sink, err := NewFileSink(path, 0)
	g.Expect(err).NotTo(HaveOccurred())
	startSink(t, sink.Start)

	admission := testRecord("td.run-as-root", "team-a", "db", "runs as root", "no seccomp profile")
	admission.Source = SourceAdmission
	admission.Admission = &AdmissionDetails{Operation: "UPDATE", User: "alice", Denied: true}
	sink.Send([]Record{testRecord("td.cpu-limit", "team-a", "web", "no CPU limit"), admission})

	g.Eventually(func() []map[string]any { return readLines(t, path) }).Should(HaveLen(3))
	lines := readLines(t, path)
	g.Expect(lines[0]).To(HaveKeyWithValue("existing", true), "the sink appends")
	g.Expect(lines[1]).To(HaveKeyWithValue("policyId", "td.cpu-limit"))
	g.Expect(lines[1]).To(HaveKeyWithValue("source", SourceAudit))
	g.Expect(lines[1]).NotTo(HaveKey("denied"))
	g.Expect(lines[2]).To(HaveKeyWithValue("message", "runs as root; no seccomp profile"))
	g.Expect(lines[2]).To(HaveKeyWithValue("operation", "UPDATE"))
	g.Expect(lines[2]).To(HaveKeyWithValue("user", "alice"))
	g.Expect(lines[2]).To(HaveKeyWithValue("denied", true))
}

func TestNewFileSinkRejectsMissingDirectory(t *testing.T) {
	if _, err := NewFileSink(filepath.Join(t.TempDir(), "missing", "violations.jsonl"), 0); err == nil {
		t.Error("NewFileSink returned no error for a path in a missing directory")
	}
}
