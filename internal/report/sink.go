package report

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Sink receives violation records from the audit and the admission webhook.
type Sink interface {
	// Send queues the records and returns at once. A sink whose queue is
	// full drops them and counts the drop in
	// trusted_delivery_sink_dropped_records_total.
	Send(records []Record)
}

// Sinks sends records to every sink it contains. A nil or empty Sinks
// discards them.
type Sinks []Sink

// Send sends the records to each sink.
func (s Sinks) Send(records []Record) {
	if len(records) == 0 {
		return
	}
	for _, sink := range s {
		sink.Send(records)
	}
}

// Default queue settings of the sinks.
const (
	defaultQueueSize     = 10000
	defaultBatchSize     = 500
	defaultFlushInterval = 5 * time.Second
)

// queue is a bounded, non-blocking record queue drained in batches by one
// goroutine. Records that do not fit are dropped and counted.
type queue struct {
	sink    string
	records chan Record
	// batchSize is the maximum number of records handed to flush at once.
	batchSize int
	// flushInterval is the maximum time a record waits for its batch to
	// fill.
	flushInterval time.Duration
}

func newQueue(sink string, size, batchSize int, flushInterval time.Duration) *queue {
	if size <= 0 {
		size = defaultQueueSize
	}
	if batchSize <= 0 {
		batchSize = defaultBatchSize
	}
	if flushInterval <= 0 {
		flushInterval = defaultFlushInterval
	}
	return &queue{sink: sink, records: make(chan Record, size), batchSize: batchSize, flushInterval: flushInterval}
}

// offer adds the records without blocking and drops those that do not fit.
func (q *queue) offer(records []Record) {
	for i := range records {
		select {
		case q.records <- records[i]:
		default:
			dropped := len(records) - i
			sinkDropped.WithLabelValues(q.sink, dropReasonQueueFull).Add(float64(dropped))
			return
		}
	}
}

// run calls flush with batches of queued records until ctx ends. A batch is
// flushed when it is full or when its oldest record waited flushInterval.
// On shutdown, records still queued are flushed once with a short deadline.
func (q *queue) run(ctx context.Context, flush func(context.Context, []Record)) {
	batch := make([]Record, 0, q.batchSize)
	timer := time.NewTimer(q.flushInterval)
	defer timer.Stop()
	send := func(ctx context.Context) {
		if len(batch) > 0 {
			flush(ctx, batch)
			batch = make([]Record, 0, q.batchSize)
		}
	}
	for {
		select {
		case <-ctx.Done():
			q.drain(&batch)
			shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownFlushTimeout)
			send(shutdownCtx)
			cancel()
			return
		case r := <-q.records:
			if len(batch) == 0 {
				timer.Reset(q.flushInterval)
			}
			batch = append(batch, r)
			if len(batch) >= q.batchSize {
				send(ctx)
			}
		case <-timer.C:
			send(ctx)
		}
	}
}

// shutdownFlushTimeout bounds the last flush when the manager stops.
const shutdownFlushTimeout = 5 * time.Second

// drain moves the queued records into batch, up to the batch size, and
// counts the rest as dropped.
func (q *queue) drain(batch *[]Record) {
	for {
		select {
		case r := <-q.records:
			if len(*batch) < q.batchSize {
				*batch = append(*batch, r)
			} else {
				sinkDropped.WithLabelValues(q.sink, dropReasonShutdown).Inc()
			}
		default:
			return
		}
	}
}

// backoff returns the wait before retry attempt (1-based): exponential from
// base, capped at max, with up to 20% jitter so that replicas do not retry
// in step.
func backoff(attempt int, base, maxWait time.Duration) time.Duration {
	wait := base
	for i := 1; i < attempt && wait < maxWait; i++ {
		wait *= 2
	}
	wait = min(wait, maxWait)
	jitter := time.Duration(rand.Int64N(int64(wait)/5 + 1))
	return wait + jitter
}

// waitOrDone waits for d and reports false when ctx ended first.
func waitOrDone(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

func sinkLogger(ctx context.Context, sink string) logr.Logger {
	return ctrl.LoggerFrom(ctx).WithName("sink").WithValues("sink", sink)
}
