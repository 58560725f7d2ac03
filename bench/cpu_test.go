package main

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       procStat
		wantErr    bool
	}{
		{
			name: "plain",
			text: "1234 (nginx) S 1200 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10",
			want: procStat{ppid: 1200, cpu: 3 * time.Second},
		},
		{
			name: "command with spaces and parentheses",
			text: "77 (weird ) name) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1",
			want: procStat{ppid: 1, cpu: 100 * time.Millisecond},
		},
		{name: "no command", text: "77 R 1 2 3", wantErr: true},
		{name: "truncated", text: "77 (x) R 1 2 3", wantErr: true},
		{name: "bad utime", text: "1 (x) S 0 1 1 0 -1 0 0 0 0 0 x 0 0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat(tc.text)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestProcessTreeCPU: this test process's own CPU time grows while it
// works, and a process that does not exist is an error.
func TestProcessTreeCPU(t *testing.T) {
	before, err := processTreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := processTreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 100*time.Millisecond {
		t.Fatalf("CPU time grew by %s during 300ms of busy work", after-before)
	}
	if _, err := processTreeCPU(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
