package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const elasticsearchSinkName = "elasticsearch"

// Write modes of the Elasticsearch sink.
const (
	// ElasticsearchModeInsert indexes one document per violation record.
	ElasticsearchModeInsert = "insert"
	// ElasticsearchModeUpsert keeps one document per policy, object, source
	// and UTC day, with a deterministic _id. Each record updates it and
	// increments its count.
	ElasticsearchModeUpsert = "upsert"
)

// DefaultElasticsearchIndex is the index of the Elasticsearch sink when
// --es-index is not set.
const DefaultElasticsearchIndex = "trusted-delivery-violations"

// Keys of the --es-credentials-secret Secret.
const (
	SecretKeyUsername = "username"
	SecretKeyPassword = "password"
	SecretKeyAPIKey   = "api-key"
	// SecretKeyCACert is an optional PEM bundle that replaces the system
	// roots for an https address.
	SecretKeyCACert = "ca.crt"
)

// ElasticsearchConfig configures the Elasticsearch sink.
type ElasticsearchConfig struct {
	// Addresses are the node URLs, for example https://es.example:9200.
	Addresses []string
	// Index receives the documents. It is created with the mapping at
	// start-up when missing. Empty means DefaultElasticsearchIndex.
	Index string
	// Mode is ElasticsearchModeInsert (the default) or ElasticsearchModeUpsert.
	Mode string

	// Username and Password authenticate with HTTP basic authentication.
	Username string
	Password string
	// APIKey is a base64 API key. It wins over Username and Password.
	APIKey string
	// CACert is a PEM bundle of the certificate authorities to trust.
	CACert []byte

	// QueueSize is the maximum number of records waiting to be sent.
	QueueSize int
	// BatchSize is the maximum number of records in one bulk request.
	BatchSize int
	// FlushInterval is the maximum time a record waits for its batch.
	FlushInterval time.Duration
	// MaxAttempts is how often a bulk request, and each item that failed
	// with a retryable status (429, 5xx), is tried. Zero means 5.
	MaxAttempts int
	// RetryBackoff is the first wait between attempts. It doubles up to
	// 30s. Zero means one second.
	RetryBackoff time.Duration

	// Transport replaces the HTTP transport. Tests use it.
	Transport http.RoundTripper
}

// ElasticsearchSink writes violation records to Elasticsearch with bulk
// requests.
type ElasticsearchSink struct {
	cfg    ElasticsearchConfig
	client *elasticsearch.Client
	queue  *queue
}

// NewElasticsearchSink validates cfg and builds the client. It makes no
// request. Start creates the index.
func NewElasticsearchSink(cfg ElasticsearchConfig) (*ElasticsearchSink, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("invalid Elasticsearch sink: no address: set --es-address")
	}
	if cfg.Index == "" {
		cfg.Index = DefaultElasticsearchIndex
	}
	if cfg.Index != strings.ToLower(cfg.Index) || strings.ContainsAny(cfg.Index, ` "*\<|,>/?#:`) {
		return nil, fmt.Errorf("invalid Elasticsearch index %q: use lowercase letters, digits, '-', '_' and '.'", cfg.Index)
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ElasticsearchModeInsert
	case ElasticsearchModeInsert, ElasticsearchModeUpsert:
	default:
		return nil, fmt.Errorf("invalid Elasticsearch mode %q: use %s or %s", cfg.Mode, ElasticsearchModeInsert, ElasticsearchModeUpsert)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: cfg.Addresses,
		Username:  cfg.Username,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		CACert:    cfg.CACert,
		Transport: cfg.Transport,
		// The sink retries itself, so that it can count retries and retry
		// single bulk items.
		DisableRetry: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create Elasticsearch client for %v: %w", cfg.Addresses, err)
	}
	return &ElasticsearchSink{
		cfg:    cfg,
		client: es,
		queue:  newQueue(elasticsearchSinkName, cfg.QueueSize, cfg.BatchSize, cfg.FlushInterval),
	}, nil
}

// Send queues the records without blocking.
func (s *ElasticsearchSink) Send(records []Record) {
	s.queue.offer(records)
}

// NeedLeaderElection is false: every replica sends the admission records
// it handles.
func (s *ElasticsearchSink) NeedLeaderElection() bool {
	return false
}

// Start creates the index when missing, retrying until it succeeds, and
// then sends queued records until ctx ends. Records queue up meanwhile.
func (s *ElasticsearchSink) Start(ctx context.Context) error {
	log := sinkLogger(ctx, elasticsearchSinkName).WithValues("index", s.cfg.Index, "mode", s.cfg.Mode)
	for attempt := 1; ; attempt++ {
		err := s.ensureIndex(ctx)
		if err == nil {
			break
		}
		wait := backoff(attempt, s.cfg.RetryBackoff, maxElasticsearchBackoff)
		log.Error(err, "failed to create the Elasticsearch index; retrying", "attempt", attempt, "retryIn", wait)
		if !waitOrDone(ctx, wait) {
			return nil
		}
	}
	log.Info("sending violations to Elasticsearch", "addresses", s.cfg.Addresses)
	s.queue.run(ctx, func(ctx context.Context, batch []Record) {
		s.flush(ctx, log, batch)
	})
	return nil
}

const maxElasticsearchBackoff = 30 * time.Second

// indexMapping types every Document field, so that the first document
// cannot decide a type by accident.
const indexMapping = `{
  "mappings": {
    "properties": {
      "@timestamp": {"type": "date"},
      "firstSeen": {"type": "date"},
      "lastSeen": {"type": "date"},
      "count": {"type": "long"},
      "source": {"type": "keyword"},
      "policyId": {"type": "keyword"},
      "policyName": {"type": "keyword"},
      "severity": {"type": "keyword"},
      "category": {"type": "keyword"},
      "enforced": {"type": "boolean"},
      "apiVersion": {"type": "keyword"},
      "kind": {"type": "keyword"},
      "namespace": {"type": "keyword"},
      "name": {"type": "keyword"},
      "uid": {"type": "keyword"},
      "workspace": {"type": "keyword"},
      "fluxOwnerKind": {"type": "keyword"},
      "fluxOwnerNamespace": {"type": "keyword"},
      "fluxOwnerName": {"type": "keyword"},
      "message": {"type": "text"},
      "occurrences": {
        "properties": {
          "msg": {"type": "text"},
          "violatingKey": {"type": "keyword"},
          "recommendedValue": {"type": "keyword", "ignore_above": 1024}
        }
      },
      "operation": {"type": "keyword"},
      "user": {"type": "keyword"},
      "denied": {"type": "boolean"}
    }
  }
}`

// ensureIndex creates the index with its mapping unless it exists. Another
// replica creating it at the same time is not an error.
func (s *ElasticsearchSink) ensureIndex(ctx context.Context) error {
	res, err := s.client.Indices.Exists([]string{s.cfg.Index}, s.client.Indices.Exists.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("check Elasticsearch index %s: %w", s.cfg.Index, err)
	}
	drainClose(res.Body)
	switch res.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
	default:
		return fmt.Errorf("check Elasticsearch index %s: unexpected status %s", s.cfg.Index, res.Status())
	}

	res, err = s.client.Indices.Create(s.cfg.Index,
		s.client.Indices.Create.WithContext(ctx),
		s.client.Indices.Create.WithBody(strings.NewReader(indexMapping)))
	if err != nil {
		return fmt.Errorf("create Elasticsearch index %s: %w", s.cfg.Index, err)
	}
	defer drainClose(res.Body)
	if !res.IsError() {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if bytes.Contains(body, []byte("resource_already_exists_exception")) {
		return nil
	}
	return fmt.Errorf("create Elasticsearch index %s: status %s: %s", s.cfg.Index, res.Status(), body)
}

// flush sends the batch with bulk requests, retrying the request and then
// each item that failed with a retryable status, up to MaxAttempts.
func (s *ElasticsearchSink) flush(ctx context.Context, log logr.Logger, batch []Record) {
	pending := batch
	for attempt := 1; len(pending) > 0; attempt++ {
		if attempt > 1 {
			sinkRetries.WithLabelValues(elasticsearchSinkName).Inc()
			if !waitOrDone(ctx, backoff(attempt-1, s.cfg.RetryBackoff, maxElasticsearchBackoff)) {
				sinkDropped.WithLabelValues(elasticsearchSinkName, dropReasonShutdown).Add(float64(len(pending)))
				return
			}
		}
		retry, err := s.bulk(ctx, log, pending)
		if err != nil {
			log.Error(err, "bulk request failed", "records", len(pending), "attempt", attempt)
		}
		if attempt >= s.cfg.MaxAttempts && len(retry) > 0 {
			if err == nil {
				err = errors.New("bulk items failed with a retryable status")
			}
			log.Error(err, "dropping violations after the last attempt", "records", len(retry), "attempts", attempt)
			sinkDropped.WithLabelValues(elasticsearchSinkName, dropReasonDeliveryFailed).Add(float64(len(retry)))
			return
		}
		pending = retry
	}
}

// bulk sends one bulk request and returns the records to retry.
func (s *ElasticsearchSink) bulk(ctx context.Context, log logr.Logger, records []Record) ([]Record, error) {
	body, err := s.bulkBody(records)
	if err != nil {
		sinkDropped.WithLabelValues(elasticsearchSinkName, dropReasonRejected).Add(float64(len(records)))
		return nil, err
	}
	res, err := s.client.Bulk(bytes.NewReader(body), s.client.Bulk.WithContext(ctx))
	if err != nil {
		return records, fmt.Errorf("send bulk request to Elasticsearch: %w", err)
	}
	defer drainClose(res.Body)
	if res.IsError() {
		text, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		err := fmt.Errorf("bulk request to Elasticsearch index %s: status %s: %s", s.cfg.Index, res.Status(), text)
		if retryableStatus(res.StatusCode) {
			return records, err
		}
		sinkDropped.WithLabelValues(elasticsearchSinkName, dropReasonRejected).Add(float64(len(records)))
		return nil, err
	}

	var parsed bulkResponse
	if err := json.NewDecoder(res.Body).Decode(&parsed); err != nil {
		// The request was accepted. Resending could duplicate documents.
		sinkDelivered.WithLabelValues(elasticsearchSinkName).Add(float64(len(records)))
		return nil, fmt.Errorf("decode Elasticsearch bulk response: %w", err)
	}
	return s.itemsToRetry(log, records, &parsed), nil
}

// itemsToRetry counts the outcome of each item and returns the records
// whose items failed with a retryable status.
func (s *ElasticsearchSink) itemsToRetry(log logr.Logger, records []Record, res *bulkResponse) []Record {
	if !res.Errors {
		sinkDelivered.WithLabelValues(elasticsearchSinkName).Add(float64(len(records)))
		return nil
	}
	var retry []Record
	delivered, rejected := 0, 0
	for i := range records {
		item, ok := res.item(i)
		switch {
		case !ok || item.Status < 300:
			delivered++
		case retryableStatus(item.Status):
			retry = append(retry, records[i])
		default:
			rejected++
			if rejected == 1 {
				log.Error(errors.New(item.errorText()), "Elasticsearch rejected a violation document",
					"policy", records[i].PolicyID, "status", item.Status)
			}
		}
	}
	sinkDelivered.WithLabelValues(elasticsearchSinkName).Add(float64(delivered))
	sinkDropped.WithLabelValues(elasticsearchSinkName, dropReasonRejected).Add(float64(rejected))
	return retry
}

func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

type bulkResponse struct {
	Errors bool                  `json:"errors"`
	Items  []map[string]bulkItem `json:"items"`
}

// item returns the result of the i-th action, whatever its operation.
func (r *bulkResponse) item(i int) (bulkItem, bool) {
	if i >= len(r.Items) {
		return bulkItem{}, false
	}
	for _, item := range r.Items[i] {
		return item, true
	}
	return bulkItem{}, false
}

type bulkItem struct {
	Status int `json:"status"`
	Error  *struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error,omitempty"`
}

func (i bulkItem) errorText() string {
	if i.Error == nil {
		return fmt.Sprintf("status %d", i.Status)
	}
	return fmt.Sprintf("%s: %s", i.Error.Type, i.Error.Reason)
}

// upsertScript copies the new fields onto the stored document and counts
// the records. firstSeen stays as the first record set it.
const upsertScript = `for (entry in params.doc.entrySet()) { ctx._source[entry.getKey()] = entry.getValue(); } ` +
	`ctx._source.count = (ctx._source.count == null ? 0 : ctx._source.count) + 1;`

// bulkBody returns the NDJSON body of a bulk request for the records.
func (s *ElasticsearchSink) bulkBody(records []Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range records {
		doc := NewDocument(&records[i])
		var err error
		if s.cfg.Mode == ElasticsearchModeUpsert {
			err = encodeUpsert(enc, s.cfg.Index, &doc)
		} else {
			err = encodeInsert(enc, s.cfg.Index, &doc)
		}
		if err != nil {
			return nil, fmt.Errorf("encode violation of policy %s on %s %s: %w",
				doc.PolicyID, doc.Kind, objectName(doc.Namespace, doc.Name), err)
		}
	}
	return buf.Bytes(), nil
}

type bulkAction struct {
	Index  *bulkTarget `json:"index,omitempty"`
	Update *bulkTarget `json:"update,omitempty"`
}

type bulkTarget struct {
	Index           string `json:"_index"`
	ID              string `json:"_id,omitempty"`
	RetryOnConflict int    `json:"retry_on_conflict,omitempty"`
}

func encodeInsert(enc *json.Encoder, index string, doc *Document) error {
	if err := enc.Encode(bulkAction{Index: &bulkTarget{Index: index}}); err != nil {
		return err
	}
	return enc.Encode(doc)
}

// upsertDocument is the stored form in upsert mode: the Document and the
// first and last time it was seen, with the number of records.
type upsertDocument struct {
	*Document
	FirstSeen *time.Time `json:"firstSeen,omitempty"`
	LastSeen  time.Time  `json:"lastSeen"`
	Count     *int       `json:"count,omitempty"`
}

func encodeUpsert(enc *json.Encoder, index string, doc *Document) error {
	id := UpsertID(doc)
	action := bulkAction{Update: &bulkTarget{Index: index, ID: id, RetryOnConflict: 3}}
	if err := enc.Encode(action); err != nil {
		return err
	}
	seen := doc.Timestamp
	one := 1
	return enc.Encode(map[string]any{
		"script": map[string]any{
			"source": upsertScript,
			"lang":   "painless",
			"params": map[string]any{"doc": upsertDocument{Document: doc, LastSeen: seen}},
		},
		"upsert": upsertDocument{Document: doc, FirstSeen: &seen, LastSeen: seen, Count: &one},
	})
}

// UpsertID returns the _id of a document in upsert mode: a hash of the
// policy, the object's API group, kind, namespace and name, the source and
// the UTC day of the record. The API version is left out so that a version
// upgrade keeps the document.
func UpsertID(doc *Document) string {
	group := schema.FromAPIVersionAndKind(doc.APIVersion, doc.Kind).Group
	key := strings.Join([]string{
		doc.PolicyID, group, doc.Kind, doc.Namespace, doc.Name, doc.Source, doc.Timestamp.UTC().Format(time.DateOnly),
	}, "\x00")
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:20])
}

func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

func drainClose(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 1<<20))
	_ = body.Close()
}

// ElasticsearchCredentials reads the credentials of the Elasticsearch sink
// from a Secret named "namespace/name": username and password, or api-key,
// and optionally ca.crt. The values are never logged.
func ElasticsearchCredentials(ctx context.Context, reader client.Reader, ref string, cfg *ElasticsearchConfig) error {
	key, err := parseNamespacedName(ref)
	if err != nil {
		return fmt.Errorf("invalid --es-credentials-secret: %w", err)
	}
	secret := &corev1.Secret{}
	if err := reader.Get(ctx, key, secret); err != nil {
		return fmt.Errorf("read Elasticsearch credentials Secret %s: %w", key, err)
	}
	cfg.APIKey = string(secret.Data[SecretKeyAPIKey])
	cfg.Username = string(secret.Data[SecretKeyUsername])
	cfg.Password = string(secret.Data[SecretKeyPassword])
	if ca, ok := secret.Data[SecretKeyCACert]; ok {
		cfg.CACert = ca
	}
	if cfg.APIKey == "" && (cfg.Username == "" || cfg.Password == "") {
		return fmt.Errorf("invalid Elasticsearch credentials Secret %s: set %s, or both %s and %s",
			key, SecretKeyAPIKey, SecretKeyUsername, SecretKeyPassword)
	}
	return nil
}

// parseNamespacedName parses "namespace/name".
func parseNamespacedName(ref string) (types.NamespacedName, error) {
	namespace, name, ok := strings.Cut(ref, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%q is not namespace/name", ref)
	}
	return types.NamespacedName{Namespace: namespace, Name: name}, nil
}
