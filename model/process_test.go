package model

import "testing"

func TestRunFor(t *testing.T) {
	rel := Release{
		Run: RunSpec{Command: "./web", MemoryMB: 128, DiskMB: 512, Routes: []string{"a.example.com"}, Balance: BalanceRoundRobin,
			Env: map[string]string{"K": "v"}, HealthCheck: HealthCheck{Type: HealthHTTP, Endpoint: "/health"}},
		Processes: []Process{
			{Type: "worker", Command: "./work", MemoryMB: 64, DiskMB: 256, HealthCheck: HealthCheck{Type: HealthProcess}},
			{Type: "clock", MemoryMB: 32, DiskMB: 128},
			{Type: "mail", MemoryMB: 32, DiskMB: 128},
		},
		ProcfileCommands: map[string]string{"clock": "./clock", "web": "./procweb"},
	}
	tests := []struct {
		typ     string
		ok      bool
		command string
		memory  int64
		routes  int
		process string
	}{
		{"web", true, "./web", 128, 1, ""},
		{"", true, "./web", 128, 1, ""},
		{"worker", true, "./work", 64, 0, "worker"},
		{"clock", true, "./clock", 32, 0, "clock"}, // the Procfile's line
		{"mail", true, "./web", 32, 0, "mail"},     // neither: the web command
		{"nope", false, "", 0, 0, ""},
	}
	for _, tt := range tests {
		run, ok := rel.RunFor(tt.typ)
		if ok != tt.ok || run.Command != tt.command || run.MemoryMB != tt.memory || len(run.Routes) != tt.routes || run.Process != tt.process {
			t.Errorf("RunFor(%q) = %+v, %v", tt.typ, run, ok)
		}
		if ok && run.Env["K"] != "v" {
			t.Errorf("RunFor(%q) lost the env", tt.typ)
		}
		if ok && tt.process != "" && run.Balance != BalanceDefault {
			t.Errorf("RunFor(%q) kept the web balancing", tt.typ)
		}
	}
	if got := rel.ProcessTypes(); len(got) != 4 || got[0] != ProcessWeb {
		t.Errorf("ProcessTypes = %v", got)
	}
	a := App{Instances: 2, Processes: map[string]int{"worker": 3}}
	if a.InstancesOf("web") != 2 || a.InstancesOf("") != 2 || a.InstancesOf("worker") != 3 || a.InstancesOf("x") != 0 {
		t.Errorf("instance counts of %+v wrong", a)
	}
	if k := (ProcessKey{AppKey: AppKey{"dev", "app"}, Process: "worker"}); k.String() != "dev/app:worker" {
		t.Errorf("ProcessKey string %q", k)
	}
	if s := (IndexKey{Process: "worker", Index: 1}).String(); s != "worker/1" {
		t.Errorf("IndexKey string %q", s)
	}
}
