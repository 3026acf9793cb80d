package main

/*
#include <stdint.h>

// How many log records wait in the queue (fastreq_log_counter gives its
// address): a host reads it to call fastreq_log_drain only when there is
// something to drain. Not an exported variable: a C program would get its
// own copy of it (a copy relocation) that the library never writes.
static volatile int64_t log_waiting = 0;
static const volatile int64_t *log_waiting_addr(void) { return &log_waiting; }
*/
import "C"

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fastreq/fastreq/core"
	json "github.com/goccy/go-json"
)

// The engine's log records (retries, proxies cooling down) wait in a
// bounded queue until the host drains them with fastreq_log_drain: Go never
// calls into the host and never writes to its stdout or stderr.

// logRecord is one record as the host receives it.
type logRecord struct {
	TimeNS  int64          `json:"time_ns"`
	Level   string         `json:"level"` // "debug", "info", "warning", "error"
	Message string         `json:"message"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

// maxLogRecords bounds the queue; past it the oldest records are dropped
// (and counted), so a host that never drains cannot exhaust memory.
const maxLogRecords = 10000

// logQueue is a ring: once full, each new record overwrites the oldest.
type logQueue struct {
	mu      sync.Mutex
	recs    []logRecord // grows to maxLogRecords, then wraps
	head    int         // the oldest record, once full
	dropped int
}

var engineLogs = &logQueue{}

func (q *logQueue) add(r logRecord) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.recs) < maxLogRecords {
		q.recs = append(q.recs, r)
		q.publish()
		return
	}
	q.recs[q.head] = r
	q.head = (q.head + 1) % len(q.recs)
	q.dropped++
}

// logCounter is the address fastreq_log_counter hands out.
var logCounter = (*int64)(unsafe.Pointer(C.log_waiting_addr()))

// publish stores the queue length in the log counter; q.mu is held.
func (q *logQueue) publish() { atomic.StoreInt64(logCounter, int64(len(q.recs))) }

// take returns the waiting records, oldest first, with a warning first
// when some were dropped since the last call.
func (q *logQueue) take() []logRecord {
	q.mu.Lock()
	defer q.mu.Unlock()
	recs, head, dropped := q.recs, q.head, q.dropped
	q.recs, q.head, q.dropped = nil, 0, 0
	q.publish()
	if dropped == 0 {
		return recs // head is 0 until the ring is full and wraps
	}
	out := make([]logRecord, 0, len(recs)+1)
	out = append(out, logRecord{TimeNS: time.Now().UnixNano(), Level: "warning",
		Message: "log records dropped: nobody drained them", Attrs: map[string]any{"dropped": dropped}})
	out = append(out, recs[head:]...)
	return append(out, recs[:head]...)
}

// queueHandler is the slog.Handler of every client the library creates.
type queueHandler struct {
	level slog.Level
	attrs []slog.Attr
}

var _ slog.Handler = (*queueHandler)(nil)

// loggerFor maps the client config's debug and verbose settings to a level:
// debug logs everything, verbose (the default) info and up, else warnings.
func loggerFor(cfg *core.ClientConfig) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case cfg.Debug:
		level = slog.LevelDebug
	case cfg.Verbose == nil || *cfg.Verbose:
		level = slog.LevelInfo
	}
	return slog.New(&queueHandler{level: level})
}

func (h *queueHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *queueHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{TimeNS: r.Time.UnixNano(), Message: r.Message, Level: levelName(r.Level)}
	if n := r.NumAttrs() + len(h.attrs); n > 0 {
		rec.Attrs = make(map[string]any, n)
		for _, a := range h.attrs {
			rec.Attrs[a.Key] = attrValue(a.Value)
		}
		r.Attrs(func(a slog.Attr) bool {
			rec.Attrs[a.Key] = attrValue(a.Value)
			return true
		})
	}
	engineLogs.add(rec)
	return nil
}

func (h *queueHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &queueHandler{level: h.level, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

// WithGroup is not used by the engine; groups are flattened.
func (h *queueHandler) WithGroup(string) slog.Handler { return h }

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}

// attrValue keeps JSON-friendly values: durations become seconds.
func attrValue(v slog.Value) any {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindDuration:
		return v.Duration().Seconds()
	case slog.KindString:
		return v.String()
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		return v.Float64()
	case slog.KindBool:
		return v.Bool()
	}
	return v.String()
}

// drainLogs encodes the waiting records as a JSON array (nil when none).
func drainLogs() ([]byte, int) {
	recs := engineLogs.take()
	if len(recs) == 0 {
		return nil, 0
	}
	b, err := json.Marshal(recs)
	if err != nil {
		return []byte(`[{"level":"error","message":"unencodable log records"}]`), 1
	}
	return b, len(recs)
}
