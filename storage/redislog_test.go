package storage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

const redisLogChildEnv = "TLSRESUME_REDISLOG_CHILD"

// TestRedisLogOneLinePerStreak kills a real redis-server twice under a
// Redis store that keeps trying, and checks what reaches the process's
// stderr and the store's zap log. go-redis writes its lines to the stderr
// it saw at start-up, so the scenario runs in a child process (this test
// binary again) whose stderr and stdout (the zap log, JSON) are captured.
func TestRedisLogOneLinePerStreak(t *testing.T) {
	if os.Getenv(redisLogChildEnv) != "" {
		redisLogChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRedisLogOneLinePerStreak$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), redisLogChildEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if strings.Contains(stderr.String(), "redis: ") {
		t.Errorf("plain go-redis lines on stderr:\n%s", stderr.String())
	}
	var warns, infos []map[string]any
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("{")) {
			if bytes.Contains(line, []byte("redis: ")) {
				t.Errorf("plain go-redis line on stdout: %s", line)
			}
			continue
		}
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("log line %s: %v", line, err)
		}
		if e["logger"] != "redislog-test" {
			continue
		}
		switch e["level"] {
		case "warn":
			warns = append(warns, e)
		case "info":
			infos = append(infos, e)
		default:
			t.Errorf("unexpected log line %s", line)
		}
	}
	if len(warns) != 2 || len(infos) != 2 {
		t.Fatalf("want one WARN and one INFO per outage (2 outages), got %d WARN, %d INFO:\n%s", len(warns), len(infos), stdout.String())
	}
	suppressed := 0.0
	for i, w := range warns {
		if msg, _ := w["redis"].(string); !strings.Contains(msg, "connection refused") {
			t.Errorf("WARN %d carries %q, want go-redis's dial error", i, msg)
		}
		n, ok := infos[i]["suppressed_messages"].(float64)
		if !ok {
			t.Errorf("INFO %d: no suppressed_messages: %v", i, infos[i])
		}
		suppressed += n
	}
	// go-redis did repeat itself (per retry), and those repeats were kept
	// out of the log.
	if suppressed == 0 {
		t.Errorf("nothing suppressed: go-redis logged only one line per outage, the test proves nothing:\n%s", stdout.String())
	}
	t.Logf("2 outages: 2 WARN, 2 INFO lines; %v go-redis lines suppressed", suppressed)
}

// redisLogChild is the child's scenario: two outages, each ended by a
// restart, with store operations throughout.
func redisLogChild(t *testing.T) {
	srv := testredis.Must(t)
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	logger := zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stdout), zap.DebugLevel)).Named("redislog-test")
	s := newRedisStore(t, srv, func(s *RedisStore) { s.logger = logger })
	waitSynced(t, s)
	op := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		h := newHandle(t)
		if err := s.Put(ctx, h, []byte("x"), [32]byte{1}, time.Minute); err != nil {
			return err
		}
		_, err := s.Get(ctx, h)
		return err
	}
	if err := op(time.Second); err != nil {
		t.Fatal(err)
	}
	for outage := range 2 {
		srv.Kill()
		failed := 0
		for range 40 {
			if op(100*time.Millisecond) != nil {
				failed++
			}
			time.Sleep(10 * time.Millisecond)
		}
		if failed == 0 {
			t.Fatalf("outage %d: no operation failed", outage)
		}
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		var err error
		for err = errors.New("not tried"); err != nil && time.Now().Before(deadline); {
			if err = op(time.Second); err != nil {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if err != nil {
			t.Fatalf("outage %d: Redis back, operations still fail: %v", outage, err)
		}
	}
}
