package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// machine describes where the run happened.
type machine struct {
	CPUModel string `json:"cpu_model"`
	CPUs     int    `json:"cpus"`
	MemoryGB int    `json:"memory_gb"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), CPUModel: "unknown", Kernel: "unknown", OS: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				fields := strings.Fields(v)
				if len(fields) > 0 {
					m.MemoryGB = (atoiDefault(fields[0], 0) + 512*1024) / (1024 * 1024)
				}
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	return m
}

// collectVersions asks every component for its version.
func collectVersions(e *benchEnv) map[string]string {
	v := map[string]string{"go": runtime.Version()}
	v["caddy"] = firstLine(exec.Command(e.stockBin, "version").Output())
	v["caddy-plugin"] = firstLine(exec.Command(e.pluginBin, "version").Output())
	if e.nginxBin != "" {
		v["nginx"] = commandVersion(e.nginxBin, "-v")
	}
	if e.haproxyBin != "" {
		v["haproxy"] = commandVersion(e.haproxyBin, "-v")
	}
	v["openssl"] = firstLine(exec.Command("openssl", "version").Output())
	return v
}

func firstLine(out []byte, err error) string {
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}
