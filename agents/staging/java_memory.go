package staging

import (
	"fmt"
	"strings"
)

// The memory calculator: Cloud Foundry's java-buildpack-memory-calculator's
// formula, with its two large defaults scaled down for small limits.
// heap (-Xmx) = limit − headroom − stack threads × 1M (-Xss) − reserved
// code cache − metaspace − 10M direct memory, so that what the JVM may
// reserve stays inside the instance's cgroup. The JVM's flags are computed
// when the instance starts, from its MEMORY_LIMIT, by the launcher script
// the buildpack writes into the droplet (javaLauncher); the class count
// (and so metaspace) is fixed at staging. calculateMemory is the same
// arithmetic in Go, for the staging log and the tests (which run the
// launcher against it).
const (
	// cfStackThreads and cfCodeCacheMB are Cloud Foundry's defaults: 250
	// threads and 240M of reserved code cache.
	cfStackThreads = 250
	cfCodeCacheMB  = 240
	// fullDefaultsMB is the limit from which those defaults apply whole;
	// below it both scale with the limit (250 × limit/2048 threads,
	// 240M × limit/2048 code cache), down to minStackThreads and
	// minCodeCacheMB.
	fullDefaultsMB  = 2048
	minStackThreads = 20
	minCodeCacheMB  = 16
	// stackMB is each thread's stack (-Xss1M, the JVM's default on x86-64).
	stackMB = 1
	// directMB is MaxDirectMemorySize, Cloud Foundry's 10M.
	directMB = 10
	// minHeapMB is the smallest heap the calculator accepts: below it the
	// limit is too small and the instance says so instead of starting.
	minHeapMB = 32
	// JREClassCount is the number of classes in the JRE's module image
	// (Debian's openjdk-17-jre-headless: `jimage list lib/modules`).
	JREClassCount = 26626
	// classLoadPercent is the share of the app's and the JRE's classes
	// the app is expected to load (Cloud Foundry's 35%).
	classLoadPercent = 35
	// Metaspace per loaded class and its fixed part, in bytes (Cloud
	// Foundry's 5800B × classes + 14000000B).
	metaspacePerClass = 5800
	metaspaceBase     = 14_000_000
)

// memoryPlan is the calculator's result for one memory limit, in MB.
type memoryPlan struct {
	LimitMB, HeadroomMB      int64
	StackThreads             int64
	CodeCacheMB, MetaspaceMB int64
	LoadedClasses            int64
	DirectMB, HeapMB         int64
}

// loadedClasses estimates the classes an app loads: 35% of its own
// classes and the JRE's, unless memory_calculator.class_count says.
func loadedClasses(appClasses int, cfg javaConfig) int64 {
	if cfg.ClassCount > 0 {
		return int64(cfg.ClassCount)
	}
	all := int64(appClasses + JREClassCount)
	return (all*classLoadPercent + 99) / 100
}

// metaspaceMB is the metaspace for loaded classes, rounded up to a MB.
func metaspaceMB(loaded int64) int64 {
	return (metaspaceBase + metaspacePerClass*loaded + 1<<20 - 1) >> 20
}

// calculateMemory computes the JVM's memory flags for a limit (MB), the
// loaded classes, the configured stack threads (0: scaled default) and
// headroom (percent of the limit). A limit that leaves less than 32M of
// heap is an error naming every part.
func calculateMemory(limitMB, loaded, threads, headroomPct int64) (memoryPlan, error) {
	p := memoryPlan{LimitMB: limitMB, LoadedClasses: loaded, StackThreads: threads,
		DirectMB: directMB, MetaspaceMB: metaspaceMB(loaded)}
	if p.StackThreads == 0 {
		p.StackThreads = cfStackThreads
		if limitMB < fullDefaultsMB {
			p.StackThreads = max(minStackThreads, cfStackThreads*limitMB/fullDefaultsMB)
		}
	}
	p.CodeCacheMB = cfCodeCacheMB
	if limitMB < fullDefaultsMB {
		p.CodeCacheMB = max(minCodeCacheMB, cfCodeCacheMB*limitMB/fullDefaultsMB)
	}
	p.HeadroomMB = limitMB * headroomPct / 100
	p.HeapMB = limitMB - p.HeadroomMB - p.StackThreads*stackMB - p.CodeCacheMB - p.MetaspaceMB - p.DirectMB
	if p.HeapMB < minHeapMB {
		return p, fmt.Errorf("memory limit %dM is too small for the JVM: %s leave %dM of heap, below the %dM minimum; "+
			"raise the app's memory, or lower memory_calculator stack_threads or class_count in %s",
			limitMB, p.parts(), p.HeapMB, minHeapMB, javaConfigEnv)
	}
	return p, nil
}

// parts names what the calculator reserves besides the heap.
func (p memoryPlan) parts() string {
	return fmt.Sprintf("%dM headroom + %d threads × %dM stack + %dM code cache + %dM metaspace (%d classes) + %dM direct memory",
		p.HeadroomMB, p.StackThreads, stackMB, p.CodeCacheMB, p.MetaspaceMB, p.LoadedClasses, p.DirectMB)
}

// flags are the JVM options of the plan, before the user's JAVA_OPTS.
func (p memoryPlan) flags() string {
	return fmt.Sprintf("-Xmx%dM -Xss%dM -XX:ReservedCodeCacheSize=%dM -XX:MaxMetaspaceSize=%dM -XX:MaxDirectMemorySize=%dM -XX:+ExitOnOutOfMemoryError",
		p.HeapMB, stackMB, p.CodeCacheMB, p.MetaspaceMB, p.DirectMB)
}

// String is the plan as the staging log and the launcher write it.
func (p memoryPlan) String() string {
	return fmt.Sprintf("limit %dM: -Xmx%dM = %dM − %s", p.LimitMB, p.HeapMB, p.LimitMB, p.parts())
}

// LauncherPath is where the java buildpack's launcher is in the app
// folder; the droplet's start command runs it.
const LauncherPath = ".java-buildpack/start"

// javaLauncher writes the launcher script: it reads MEMORY_LIMIT (e.g.
// "256m", as the agent sets it), computes the memory flags with the same
// arithmetic as calculateMemory, prints them, and execs java with them,
// -XX:+ExitOnOutOfMemoryError, then JAVA_OPTS (split on blanks, so the
// user's options win), the class path and the main class.
func javaLauncher(loaded, threads, headroomPct int64, classPath, mainClass string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("#!/bin/sh")
	w("# Written by driftless's java buildpack (docs/staging.md): the JVM's memory")
	w("# flags from the instance's MEMORY_LIMIT, then the app.")
	w("set -eu")
	w("set -f")
	w("classes=%d meta=%d threads=%d headroom=%d", loaded, metaspaceMB(loaded), threads, headroomPct)
	w("limit=${MEMORY_LIMIT:-}")
	w("num=${limit%%[bBkKmMgG]}")
	w("case \"$num\" in ''|*[!0-9]*) echo \"java buildpack: MEMORY_LIMIT '$limit' is not a size such as 256m\" >&2; exit 1 ;; esac")
	w("case \"$limit\" in")
	w("  *[gG]) mb=$((num * 1024)) ;;")
	w("  *[mM]) mb=$num ;;")
	w("  *[kK]) mb=$((num / 1024)) ;;")
	w("  *) mb=$((num / 1048576)) ;;")
	w("esac")
	w("if [ \"$threads\" -eq 0 ]; then")
	w("  threads=%d", cfStackThreads)
	w("  if [ \"$mb\" -lt %d ]; then threads=$((%d * mb / %d)); [ \"$threads\" -ge %d ] || threads=%d; fi",
		fullDefaultsMB, cfStackThreads, fullDefaultsMB, minStackThreads, minStackThreads)
	w("fi")
	w("code=%d", cfCodeCacheMB)
	w("if [ \"$mb\" -lt %d ]; then code=$((%d * mb / %d)); [ \"$code\" -ge %d ] || code=%d; fi",
		fullDefaultsMB, cfCodeCacheMB, fullDefaultsMB, minCodeCacheMB, minCodeCacheMB)
	w("room=$((mb * headroom / 100))")
	w("heap=$((mb - room - threads * %d - code - meta - %d))", stackMB, directMB)
	w("parts=\"${room}M headroom + $threads threads × %dM stack + ${code}M code cache + ${meta}M metaspace ($classes classes) + %dM direct memory\"",
		stackMB, directMB)
	w("if [ \"$heap\" -lt %d ]; then", minHeapMB)
	w("  echo \"java buildpack: memory limit ${mb}M is too small for the JVM: $parts leave ${heap}M of heap, below the %dM minimum; "+
		"raise the app's memory, or lower memory_calculator stack_threads or class_count in %s\" >&2", minHeapMB, javaConfigEnv)
	w("  exit 1")
	w("fi")
	w("echo \"JVM memory: limit ${mb}M: -Xmx${heap}M = ${mb}M − $parts\"")
	w("exec java -Xmx${heap}M -Xss%dM -XX:ReservedCodeCacheSize=${code}M -XX:MaxMetaspaceSize=${meta}M -XX:MaxDirectMemorySize=%dM "+
		"-XX:+ExitOnOutOfMemoryError ${JAVA_OPTS:-} -cp %s %s \"$@\"", stackMB, directMB, shellQuote(classPath), shellQuote(mainClass))
	return b.String()
}
