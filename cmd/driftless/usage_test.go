package main

import (
	"testing"

	"github.com/driftless/driftless/model"
)

func TestUsageColumns(t *testing.T) {
	tests := []struct {
		name           string
		in             model.InstanceStatus
		cpu, mem, disk string
	}{
		{"not read yet", model.InstanceStatus{MemoryMB: 256}, "-", "-", "-"},
		{"with limits", model.InstanceStatus{MemoryMB: 256, DiskMB: 1024,
			Usage: &model.InstanceUsage{CPUPercent: 12.345, MemoryBytes: 25 << 20, DiskBytes: 512}}, "12.3%", "25M of 256M", "512B of 1G"},
		{"without limits", model.InstanceStatus{Usage: &model.InstanceUsage{CPUPercent: 250, MemoryBytes: 1536 << 10, DiskBytes: 3 << 30}},
			"250.0%", "1.5M", "3G"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem, disk := usageColumns(tt.in)
			if cpu != tt.cpu || mem != tt.mem || disk != tt.disk {
				t.Fatalf("usageColumns = %q, %q, %q; want %q, %q, %q", cpu, mem, disk, tt.cpu, tt.mem, tt.disk)
			}
		})
	}
}
