package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat. It is 100 on every architecture Go supports on Linux
// (the kernel fixes the user-visible value regardless of CONFIG_HZ).
const clockTicks = 100

// procStat is what the harness reads from /proc/<pid>/stat.
type procStat struct {
	ppid int
	cpu  time.Duration // utime + stime: every thread of the process, dead ones included
}

// parseProcStat parses the text of /proc/<pid>/stat. The second field, the
// command name in parentheses, may itself contain spaces and parentheses,
// so fields are counted from the last ')'.
func parseProcStat(text string) (procStat, error) {
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("proc stat: no command name in %q", text)
	}
	// After ')': state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8)
	// flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14) stime(15)
	f := strings.Fields(text[i+1:])
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: ppid %q: %w", f[1], err)
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: utime %q: %w", f[11], err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: stime %q: %w", f[12], err)
	}
	return procStat{ppid: ppid, cpu: time.Duration(utime+stime) * time.Second / clockTicks}, nil
}

// processTreeCPU returns the CPU time (user + system) consumed so far by the
// process pid and every process descended from it, from the kernel's own
// accounting. nginx serves from worker processes under its master; Caddy and
// HAProxy serve from threads of one process.
func processTreeCPU(pid int) (time.Duration, error) {
	stats, err := allProcStats()
	if err != nil {
		return 0, err
	}
	if _, ok := stats[pid]; !ok {
		return 0, fmt.Errorf("process %d is not running", pid)
	}
	children := map[int][]int{}
	for p, s := range stats {
		children[s.ppid] = append(children[s.ppid], p)
	}
	var total time.Duration
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		total += stats[p].cpu
		queue = append(queue, children[p]...)
	}
	return total, nil
}

// processCPU returns the CPU time consumed so far by the process pid alone
// (all its threads).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s, err := parseProcStat(string(b))
	return s.cpu, err
}

// allProcStats reads /proc/<pid>/stat of every process. Processes that end
// while it reads are skipped.
func allProcStats() (map[int]procStat, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no /proc/<pid>/stat files: CPU accounting needs Linux's /proc")
	}
	stats := make(map[int]procStat, len(dirs))
	for _, path := range dirs {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s, err := parseProcStat(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		stats[pid] = s
	}
	return stats, nil
}
