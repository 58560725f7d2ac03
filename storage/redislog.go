package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// go-redis logging.
//
// go-redis (v9.23) prints its own diagnostics — a failed dial, a broken
// pub/sub connection — as plain text on stderr ("redis: pool.go:…: …"), once
// per attempt, outside Caddy's log. Its only knob is redis.SetLogger, which
// is process-wide: the options of a client have no logger, and hooks see
// commands and dials but not these lines. So the first Redis store to be
// provisioned installs one adapter, redisLogAdapter, for the whole process,
// and the adapter writes every line to the zap logger of a live Redis
// store (the most recently provisioned one), at most one line per failure
// streak:
//
//   - the first go-redis line after Redis last answered is logged at WARN,
//     with the line's text;
//   - further lines are only counted, until a command or dial of that
//     store's client succeeds (seen by redisStreakHook), which logs one INFO
//     line with how many were suppressed and ends the streak.
//
// Why one process-wide adapter is safe with several configs and stores:
// the adapter is installed once and never swapped, so a config reload never
// races a SetLogger against go-redis goroutines (go-redis keeps the logger
// behind an atomic pointer anyway); it holds no store, only the registry of
// live sinks, so an unloaded config's store is released at Cleanup; and
// while an old and a new config overlap during a reload, the old client's
// lines land in the new store's logger — the same module logger name, and
// the same streak logic, so an outage still yields one line. After every
// Redis store is closed, lines go to the last one's logger, never to
// stderr. The one thing a process-wide logger cannot tell apart is another
// plugin's go-redis client in the same Caddy: its lines are routed (and
// deduplicated) here too, which still keeps them in Caddy's log.

// redisLogSink is one Redis store's logger and failure-streak state.
type redisLogSink struct {
	logger     *zap.Logger
	failing    atomic.Bool
	suppressed atomic.Int64
	since      atomic.Int64 // Unix nanoseconds of the streak's first line
}

// line handles one go-redis log line.
func (s *redisLogSink) line(msg string) {
	if !s.failing.CompareAndSwap(false, true) {
		s.suppressed.Add(1)
		return
	}
	s.since.Store(time.Now().UnixNano())
	s.logger.Warn("redis client error; repeats are suppressed until Redis answers again",
		zap.String("redis", msg))
}

// answered ends a failure streak: the store's client got a reply.
func (s *redisLogSink) answered() {
	if !s.failing.Load() || !s.failing.CompareAndSwap(true, false) {
		return
	}
	s.logger.Info("redis client reaches Redis again",
		zap.Int64("suppressed_messages", s.suppressed.Swap(0)),
		zap.Duration("failing_for", time.Since(time.Unix(0, s.since.Load()))))
}

// redisLogs is the registry of live Redis stores' sinks.
var redisLogs struct {
	once    sync.Once
	mu      sync.Mutex
	live    []*redisLogSink              // provisioning order
	current atomic.Pointer[redisLogSink] // where lines go: the newest live sink, else the last one
}

// registerRedisLog installs the adapter (once per process) and makes sink
// the one go-redis lines go to.
func registerRedisLog(sink *redisLogSink) {
	redisLogs.once.Do(func() { redis.SetLogger(redisLogAdapter{}) })
	redisLogs.mu.Lock()
	defer redisLogs.mu.Unlock()
	redisLogs.live = append(redisLogs.live, sink)
	redisLogs.current.Store(sink)
}

// unregisterRedisLog removes sink; lines go to the newest sink still live,
// or on to sink when it was the last.
func unregisterRedisLog(sink *redisLogSink) {
	redisLogs.mu.Lock()
	defer redisLogs.mu.Unlock()
	for i, s := range redisLogs.live {
		if s == sink {
			redisLogs.live = append(redisLogs.live[:i], redisLogs.live[i+1:]...)
			break
		}
	}
	if n := len(redisLogs.live); n > 0 {
		redisLogs.current.Store(redisLogs.live[n-1])
	}
}

// redisLogAdapter is go-redis's process-wide logger (redis.SetLogger).
type redisLogAdapter struct{}

func (redisLogAdapter) Printf(_ context.Context, format string, v ...any) {
	sink := redisLogs.current.Load()
	if sink == nil {
		// Not reached: the adapter is installed with the first sink.
		sink = fallbackRedisSink()
	}
	if sink.failing.Load() {
		sink.suppressed.Add(1) // a repeat: not even formatted
		return
	}
	sink.line(strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")))
}

var fallbackRedisSink = sync.OnceValue(func() *redisLogSink {
	return &redisLogSink{logger: caddy.Log().Named("tls_resume.session_stores.redis")}
})

// redisStreakHook ends its sink's failure streak whenever the client gets
// an answer from Redis. It adds one atomic load to a command and allocates
// nothing.
type redisStreakHook struct{ sink *redisLogSink }

// answeredErr reports whether err still means Redis answered.
func answeredErr(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return true
	}
	var re redis.Error
	return errors.As(err, &re) // an error reply is an answer
}

func (h redisStreakHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err == nil {
			h.sink.answered()
		}
		return conn, err
	}
}

func (h redisStreakHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if answeredErr(err) {
			h.sink.answered()
		}
		return err
	}
}

func (h redisStreakHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if answeredErr(err) {
			h.sink.answered()
		}
		return err
	}
}

var _ redis.Hook = redisStreakHook{}
