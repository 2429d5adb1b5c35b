package staging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCalculateMemory(t *testing.T) {
	tests := []struct {
		limit, loaded, threads, headroom int64
		want                             memoryPlan // only the sizes are compared
		wantErr                          string
	}{
		// 256M, a Spring-Boot-sized estimate: 31 threads, 30M code cache.
		{limit: 256, loaded: 9320, want: memoryPlan{StackThreads: 31, CodeCacheMB: 30, MetaspaceMB: 65, HeapMB: 120}},
		{limit: 512, loaded: 9320, want: memoryPlan{StackThreads: 62, CodeCacheMB: 60, MetaspaceMB: 65, HeapMB: 315}},
		{limit: 1024, loaded: 9320, want: memoryPlan{StackThreads: 125, CodeCacheMB: 120, MetaspaceMB: 65, HeapMB: 704}},
		// From 2G, Cloud Foundry's defaults whole.
		{limit: 2048, loaded: 9320, want: memoryPlan{StackThreads: 250, CodeCacheMB: 240, MetaspaceMB: 65, HeapMB: 1483}},
		{limit: 4096, loaded: 9320, want: memoryPlan{StackThreads: 250, CodeCacheMB: 240, MetaspaceMB: 65, HeapMB: 3531}},
		// Configured threads and headroom.
		{limit: 256, loaded: 9320, threads: 25, headroom: 10, want: memoryPlan{StackThreads: 25, CodeCacheMB: 30, MetaspaceMB: 65, HeadroomMB: 25, HeapMB: 101}},
		// The floors: 20 threads, 16M code cache.
		{limit: 160, loaded: 1000, want: memoryPlan{StackThreads: 20, CodeCacheMB: 18, MetaspaceMB: 19, HeapMB: 93}},
		{limit: 128, loaded: 1000, want: memoryPlan{StackThreads: 20, CodeCacheMB: 16, MetaspaceMB: 19, HeapMB: 63}},
		// Too small: the error names every part.
		{limit: 128, loaded: 9320, wantErr: "memory limit 128M is too small for the JVM: 0M headroom + 20 threads × 1M stack + 16M code cache + " +
			"65M metaspace (9320 classes) + 10M direct memory leave 17M of heap, below the 32M minimum"},
		{limit: 64, loaded: 100, wantErr: "leave 4M of heap"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dM_%d_%d_%d", tt.limit, tt.loaded, tt.threads, tt.headroom), func(t *testing.T) {
			p, err := calculateMemory(tt.limit, tt.loaded, tt.threads, tt.headroom)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := memoryPlan{StackThreads: p.StackThreads, CodeCacheMB: p.CodeCacheMB, MetaspaceMB: p.MetaspaceMB, HeadroomMB: p.HeadroomMB, HeapMB: p.HeapMB}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if sum := p.HeapMB + p.HeadroomMB + p.StackThreads*stackMB + p.CodeCacheMB + p.MetaspaceMB + p.DirectMB; sum != tt.limit {
				t.Fatalf("parts add up to %dM, not the limit %dM", sum, tt.limit)
			}
		})
	}
}

func TestLoadedClasses(t *testing.T) {
	if n := loadedClasses(0, javaConfig{}); n != 9320 { // ⌈0.35 × 26626⌉
		t.Fatalf("JRE only: %d", n)
	}
	if n := loadedClasses(4000, javaConfig{}); n != 10720 {
		t.Fatalf("4000 app classes: %d", n)
	}
	if n := loadedClasses(4000, javaConfig{ClassCount: 1234}); n != 1234 {
		t.Fatalf("class_count: %d", n)
	}
}

// TestLauncherMatchesCalculator runs the launcher script with /bin/sh
// for a table of limits, a java on PATH that prints its arguments, and
// compares its flags with calculateMemory's (the Go arithmetic is the
// documented one; the script is what runs in the instance).
func TestLauncherMatchesCalculator(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "java"), []byte("#!/bin/sh\necho \"java $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		limit                    string
		mb, loaded, thr, headrms int64
	}{
		{"256m", 256, 9320, 0, 0}, {"256M", 256, 9320, 25, 0}, {"512m", 512, 9320, 0, 5}, {"1g", 1024, 10720, 0, 0},
		{"1536m", 1536, 9320, 0, 0}, {"2048m", 2048, 9320, 0, 0}, {"8g", 8192, 30000, 300, 10}, {"268435456", 256, 1000, 0, 0},
		{"128m", 128, 9320, 0, 0}, {"200m", 200, 1000, 0, 0},
	} {
		t.Run(tc.limit, func(t *testing.T) {
			script := filepath.Join(t.TempDir(), "start")
			if err := os.WriteFile(script, []byte(javaLauncher(tc.loaded, tc.thr, tc.headrms, ".:lib/a.jar", "com.example.Main")), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("/bin/sh", script, "arg1")
			cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "MEMORY_LIMIT=" + tc.limit, "JAVA_OPTS=-Xss512k -Dx=y"}
			out, err := cmd.CombinedOutput()
			p, cerr := calculateMemory(tc.mb, tc.loaded, tc.thr, tc.headrms)
			if cerr != nil {
				// The same refusal, with the same numbers.
				msg := cerr.Error()
				if err == nil || !strings.Contains(string(out), msg) {
					t.Fatalf("launcher: %v\n%s\nwant the error %q", err, out, msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("launcher: %v\n%s", err, out)
			}
			want := "JVM memory: " + p.String() + "\njava " + p.flags() + " -Xss512k -Dx=y -cp .:lib/a.jar com.example.Main arg1\n"
			if string(out) != want {
				t.Fatalf("launcher printed\n%s\nwant\n%s", out, want)
			}
		})
	}
	cmd := exec.Command("/bin/sh", "-c", javaLauncher(1, 0, 0, ".", "M"))
	cmd.Env = []string{"PATH=" + bin, "MEMORY_LIMIT=lots"}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "MEMORY_LIMIT 'lots' is not a size") {
		t.Fatalf("bad MEMORY_LIMIT: %v %s", err, out)
	}
}
