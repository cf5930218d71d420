package report

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

const fileSinkName = "file"

// FileSink appends one JSON Document per line to a file, for log shippers.
// It opens the file in append mode, so rotation must truncate the file in
// place (logrotate copytruncate) rather than move it.
type FileSink struct {
	path  string
	queue *queue
}

// NewFileSink returns a sink that writes to path, creating it with mode 0640
// when missing. The sink uses the default queue length when queueSize <= 0.
// NewFileSink opens the file once, so that a wrong path fails at start-up.
func NewFileSink(path string, queueSize int) (*FileSink, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close violations file %s: %w", path, err)
	}
	return &FileSink{path: path, queue: newQueue(fileSinkName, queueSize, 0, defaultFileFlushInterval)}, nil
}

// defaultFileFlushInterval is short because writing a file is cheap and log
// shippers expect lines soon.
const defaultFileFlushInterval = 500 * time.Millisecond

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open violations file %s: %w", path, err)
	}
	return f, nil
}

// Send queues the records without blocking.
func (s *FileSink) Send(records []Record) {
	s.queue.offer(records)
}

// Start writes queued records until ctx ends.
func (s *FileSink) Start(ctx context.Context) error {
	log := sinkLogger(ctx, fileSinkName).WithValues("path", s.path)
	log.Info("writing violations to a file")
	s.queue.run(ctx, func(ctx context.Context, batch []Record) {
		if err := s.write(batch); err != nil {
			log.Error(err, "failed to write violations", "records", len(batch))
			sinkDropped.WithLabelValues(fileSinkName, dropReasonDeliveryFailed).Add(float64(len(batch)))
			return
		}
		sinkDelivered.WithLabelValues(fileSinkName).Add(float64(len(batch)))
	})
	return nil
}

// NeedLeaderElection is false: every replica writes the admission records
// it handles.
func (s *FileSink) NeedLeaderElection() bool {
	return false
}

// write opens the file for each batch, so that the sink recovers when the
// file was removed or its volume remounted.
func (s *FileSink) write(batch []Record) (err error) {
	f, err := openAppend(s.path)
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := f.Close(); err == nil && closeErr != nil {
			err = fmt.Errorf("close violations file %s: %w", s.path, closeErr)
		}
	}()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range batch {
		if err := enc.Encode(NewDocument(&batch[i])); err != nil {
			return fmt.Errorf("encode violation of policy %s: %w", batch[i].PolicyID, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write violations file %s: %w", s.path, err)
	}
	return nil
}
