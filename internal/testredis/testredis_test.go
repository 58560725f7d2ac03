package testredis

import "testing"

func TestStartPauseRestart(t *testing.T) {
	s := Must(t)
	if err := s.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(); err == nil {
		t.Fatal("paused server answered PING")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(); err != nil {
		t.Fatalf("resumed server: %v", err)
	}
	s.Kill()
	if err := s.Ping(); err == nil {
		t.Fatal("killed server answered PING")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}
