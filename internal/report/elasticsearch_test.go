package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// fakeElasticsearch is a loopback server that speaks the parts of the
// Elasticsearch REST API the sink uses and checks the requests' format.
type fakeElasticsearch struct {
	t *testing.T

	mu          sync.Mutex
	indexExists bool
	mapping     map[string]any
	auth        string
	// bulkLines holds the NDJSON lines of every accepted bulk request.
	bulkLines [][]map[string]any
	// itemStatus returns the status of the i-th item of the n-th bulk
	// request (both 0-based); nil means 201.
	itemStatus func(request, item int) int
	requests   int
}

func newFakeElasticsearch(t *testing.T) (*fakeElasticsearch, *httptest.Server) {
	fake := &fakeElasticsearch{t: t}
	server := httptest.NewServer(http.HandlerFunc(fake.serve))
	t.Cleanup(server.Close)
	return fake, server
}

func (f *fakeElasticsearch) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The client refuses servers that do not identify as Elasticsearch.
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	f.auth = r.Header.Get("Authorization")

	switch {
	case r.Method == http.MethodHead && r.URL.Path == "/violations":
		if !f.indexExists {
			w.WriteHeader(http.StatusNotFound)
		}
	case r.Method == http.MethodPut && r.URL.Path == "/violations":
		if err := json.NewDecoder(r.Body).Decode(&f.mapping); err != nil {
			f.t.Errorf("index mapping is not JSON: %v", err)
		}
		f.indexExists = true
		_, _ = io.WriteString(w, `{"acknowledged":true}`)
	case r.Method == http.MethodPost && r.URL.Path == "/_bulk":
		f.serveBulk(w, r)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeElasticsearch) serveBulk(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.Contains(ct, "json") {
		f.t.Errorf("bulk Content-Type = %q, want NDJSON", ct)
	}

	body, _ := io.ReadAll(r.Body)
	if !bytes.HasSuffix(body, []byte("\n")) {
		f.t.Errorf("bulk body does not end with a newline")
	}
	var lines []map[string]any
	scanner := bufio.NewScanner(bytes.NewReader(body))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		var line map[string]any
		if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
			f.t.Errorf("bulk line %q is not a JSON object: %v", scanner.Text(), err)
		}
		lines = append(lines, line)
	}
	if len(lines)%2 != 0 {
		f.t.Errorf("bulk body has %d lines, want an action and a source line per item", len(lines))
	}

	request := f.requests
	f.requests++
	items := make([]map[string]any, 0, len(lines)/2)
	failed := false
	for i := 0; i+1 < len(lines); i += 2 {
		status := http.StatusCreated
		if f.itemStatus != nil {
			if s := f.itemStatus(request, i/2); s != 0 {
				status = s
			}
		}
		item := map[string]any{"status": status}
		if status >= 300 {
			failed = true
			item["error"] = map[string]any{"type": "es_rejected_execution_exception", "reason": "queue full"}
		}
		for op := range lines[i] {
			items = append(items, map[string]any{op: item})
		}
	}

	f.bulkLines = append(f.bulkLines, lines)
	_ = json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": failed, "items": items})
}

func (f *fakeElasticsearch) bulks() [][]map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]map[string]any(nil), f.bulkLines...)
}

func newTestElasticsearchSink(t *testing.T, server *httptest.Server, mode string) *ElasticsearchSink {
	t.Helper()
	sink, err := NewElasticsearchSink(ElasticsearchConfig{
		Addresses:     []string{server.URL},
		Index:         "violations",
		Mode:          mode,
		APIKey:        "a2V5OnNlY3JldA==",
		FlushInterval: 10 * time.Millisecond,
		RetryBackoff:  time.Millisecond,
	})
	if err != nil {
		t.Fatalf("NewElasticsearchSink: %v", err)
	}
	return sink
}

func TestElasticsearchSinkInsertMode(t *testing.T) {
	g := NewWithT(t)
	fake, server := newFakeElasticsearch(t)
	sink := newTestElasticsearchSink(t, server, ElasticsearchModeInsert)
	startSink(t, sink.Start)

	sink.Send([]Record{
		testRecord("td.cpu-limit", "team-a", "web", "container web has no CPU limit"),
		testRecord("td.run-as-root", "team-a", "web", "container web runs as root"),
	})

	g.Eventually(fake.bulks).Should(HaveLen(1))
	lines := fake.bulks()[0]
	g.Expect(lines).To(HaveLen(4))
	g.Expect(lines[0]).To(Equal(map[string]any{"index": map[string]any{"_index": "violations"}}))
	g.Expect(lines[1]).To(HaveKeyWithValue("policyId", "td.cpu-limit"))
	g.Expect(lines[1]).To(HaveKeyWithValue("@timestamp", "2025-03-14T15:09:26Z"))
	g.Expect(lines[1]).To(HaveKeyWithValue("namespace", "team-a"))
	g.Expect(lines[1]).To(HaveKeyWithValue("kind", "Deployment"))
	g.Expect(lines[1]).To(HaveKeyWithValue("message", "container web has no CPU limit"))
	g.Expect(lines[1]).To(HaveKeyWithValue("occurrences", ConsistOf(
		map[string]any{"msg": "container web has no CPU limit", "violatingKey": "spec.replicas", "recommendedValue": "3"},
	)))
	g.Expect(lines[3]).To(HaveKeyWithValue("policyId", "td.run-as-root"))

	fake.mu.Lock()
	defer fake.mu.Unlock()
	g.Expect(fake.auth).To(Equal("APIKey a2V5OnNlY3JldA=="))
	g.Expect(fake.mapping).To(HaveKey("mappings"))
	properties := fake.mapping["mappings"].(map[string]any)["properties"].(map[string]any)
	g.Expect(properties).To(HaveKeyWithValue("policyId", map[string]any{"type": "keyword"}))
	g.Expect(properties).To(HaveKeyWithValue("@timestamp", map[string]any{"type": "date"}))
}

func TestElasticsearchSinkUpsertMode(t *testing.T) {
	g := NewWithT(t)
	fake, server := newFakeElasticsearch(t)
	fake.indexExists = true
	sink := newTestElasticsearchSink(t, server, ElasticsearchModeUpsert)
	startSink(t, sink.Start)

	first := testRecord("td.cpu-limit", "team-a", "web", "no CPU limit")
	sameDay := first
	sameDay.Time = first.Time.Add(time.Hour)
	nextDay := first
	nextDay.Time = first.Time.Add(24 * time.Hour)
	sink.Send([]Record{first, sameDay, nextDay})

	g.Eventually(fake.bulks).Should(HaveLen(1))
	lines := fake.bulks()[0]
	g.Expect(lines).To(HaveLen(6))
	ids := make([]string, 3)
	for i := range ids {
		update, ok := lines[2*i]["update"].(map[string]any)
		g.Expect(ok).To(BeTrue(), "action line %d is not an update: %v", i, lines[2*i])
		g.Expect(update).To(HaveKeyWithValue("_index", "violations"))
		ids[i], _ = update["_id"].(string)
		g.Expect(ids[i]).NotTo(BeEmpty())

		body := lines[2*i+1]
		g.Expect(body).To(HaveKey("script"))
		upsert, ok := body["upsert"].(map[string]any)
		g.Expect(ok).To(BeTrue(), "item %d has no upsert document", i)
		g.Expect(upsert).To(HaveKeyWithValue("count", BeNumerically("==", 1)))
		g.Expect(upsert).To(HaveKey("firstSeen"))
		g.Expect(upsert).To(HaveKeyWithValue("policyId", "td.cpu-limit"))
	}
	g.Expect(ids[1]).To(Equal(ids[0]), "records of the same day share the document")
	g.Expect(ids[2]).NotTo(Equal(ids[0]), "a new day starts a new document")
}

func TestElasticsearchSinkRetriesRejectedItems(t *testing.T) {
	g := NewWithT(t)
	fake, server := newFakeElasticsearch(t)
	fake.indexExists = true
	// The first request rejects its second item with 429 and its third
	// with 400; only the 429 item is sent again.
	fake.itemStatus = func(request, item int) int {
		if request == 0 && item == 1 {
			return http.StatusTooManyRequests
		}
		if request == 0 && item == 2 {
			return http.StatusBadRequest
		}
		return 0
	}
	sink := newTestElasticsearchSink(t, server, ElasticsearchModeInsert)
	rejectedBefore := droppedCount(elasticsearchSinkName, dropReasonRejected)
	startSink(t, sink.Start)

	sink.Send([]Record{
		testRecord("p1", "ns", "a", "m"),
		testRecord("p2", "ns", "b", "m"),
		testRecord("p3", "ns", "c", "m"),
	})

	g.Eventually(fake.bulks).Should(HaveLen(2))
	retried := fake.bulks()[1]
	g.Expect(retried).To(HaveLen(2))
	g.Expect(retried[1]).To(HaveKeyWithValue("policyId", "p2"))
	g.Expect(droppedCount(elasticsearchSinkName, dropReasonRejected) - rejectedBefore).To(Equal(1.0))
}

func TestElasticsearchSinkDropsWhenQueueFull(t *testing.T) {
	_, server := newFakeElasticsearch(t)
	sink, err := NewElasticsearchSink(ElasticsearchConfig{Addresses: []string{server.URL}, Index: "violations", QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	before := droppedCount(elasticsearchSinkName, dropReasonQueueFull)
	// Nothing drains the queue, so Send must return at once and drop.
	sink.Send([]Record{testRecord("p", "ns", "a"), testRecord("p", "ns", "b"), testRecord("p", "ns", "c")})
	if got := droppedCount(elasticsearchSinkName, dropReasonQueueFull) - before; got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
}

func TestNewElasticsearchSinkRejectsInvalidConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  ElasticsearchConfig
	}{
		{name: "no address", cfg: ElasticsearchConfig{}},
		{name: "uppercase index", cfg: ElasticsearchConfig{Addresses: []string{"http://127.0.0.1:9200"}, Index: "Violations"}},
		{name: "unknown mode", cfg: ElasticsearchConfig{Addresses: []string{"http://127.0.0.1:9200"}, Mode: "append"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewElasticsearchSink(tc.cfg); err == nil {
				t.Errorf("NewElasticsearchSink(%+v) returned no error", tc.cfg)
			}
		})
	}
}

func TestUpsertIDIgnoresAPIVersion(t *testing.T) {
	r := testRecord("p", "ns", "web", "m")
	v1 := NewDocument(&r)
	r.Object.APIVersion = "apps/v2"
	v2 := NewDocument(&r)
	if UpsertID(&v1) != UpsertID(&v2) {
		t.Errorf("the upsert ID changed with the API version")
	}
	r.Object.Name = "other"
	other := NewDocument(&r)
	if UpsertID(&v1) == UpsertID(&other) {
		t.Errorf("two objects share an upsert ID")
	}
}
