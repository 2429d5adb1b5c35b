package main

import (
	"fmt"

	"github.com/driftless/driftless/model"
)

// usageColumns are an instance's CPU, memory and disk as `cf app` shows
// them: "0.3%", "25.3M of 256M", "1.2M of 1G"; "-" until its cell read
// them.
func usageColumns(in model.InstanceStatus) (cpu, memory, disk string) {
	u := in.Usage
	if u == nil {
		return "-", "-", "-"
	}
	return fmt.Sprintf("%.1f%%", u.CPUPercent), ofLimit(u.MemoryBytes, in.MemoryMB), ofLimit(u.DiskBytes, in.DiskMB)
}

// ofLimit is "USED of LIMIT" (just USED without a limit).
func ofLimit(used, limitMB int64) string {
	if limitMB <= 0 {
		return humanBytes(used)
	}
	return humanBytes(used) + " of " + humanBytes(limitMB<<20)
}

// humanBytes is n in the largest binary unit that keeps it at least 1,
// with one decimal unless whole: 512B, 25.3M, 1G.
func humanBytes(n int64) string {
	units := []string{"B", "K", "M", "G", "T"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d%s", int64(v), units[i])
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}
