package manifests

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/driftless/driftless/model"
)

func TestParseNetworkPolicies(t *testing.T) {
	const good = `policies:
- source: frontend
  destination: backend
  protocol: tcp
  ports: 8080
- {source: frontend, destination: backend, protocol: UDP, ports: 8000-8100}
- source: worker
  destination: backend
  ports: "9000"
`
	np := ParseNetworkPolicies("network-policies.yml", []byte(good))
	if len(np.Diagnostics) != 0 {
		t.Fatalf("diagnostics %v", np.Diagnostics)
	}
	want := []model.NetworkPolicy{
		{Source: "frontend", Destination: "backend", Protocol: "tcp", Ports: model.PortRange{Start: 8080, End: 8080},
			Pos: model.Position{File: "network-policies.yml", Line: 2, Col: 3}},
		{Source: "frontend", Destination: "backend", Protocol: "udp", Ports: model.PortRange{Start: 8000, End: 8100},
			Pos: model.Position{File: "network-policies.yml", Line: 6, Col: 3}},
		{Source: "worker", Destination: "backend", Protocol: "tcp", Ports: model.PortRange{Start: 9000, End: 9000},
			Pos: model.Position{File: "network-policies.yml", Line: 7, Col: 3}},
	}
	if len(np.Policies) != len(want) {
		t.Fatalf("policies %+v", np.Policies)
	}
	for i := range want {
		if np.Policies[i] != want[i] {
			t.Errorf("policy %d: %+v, want %+v", i, np.Policies[i], want[i])
		}
	}
	for _, empty := range []string{"", "policies:\n", "policies: []\n"} {
		if np := ParseNetworkPolicies("network-policies.yml", []byte(empty)); len(np.Diagnostics) != 0 || len(np.Policies) != 0 {
			t.Errorf("%q: %+v", empty, np)
		}
	}

	tests := []struct {
		name, yaml, want string
	}{
		{"bad protocol", "policies:\n- {source: a, destination: b, protocol: icmp, ports: 80}\n",
			`network-policies.yml:2:41: protocol "icmp": use tcp or udp`},
		{"bad port", "policies:\n- {source: a, destination: b, ports: 70000}\n",
			`network-policies.yml:2:38: ports "70000": ports go from 1 to 65535`},
		{"reversed range", "policies:\n- source: a\n  destination: b\n  ports: 9000-8000\n",
			`network-policies.yml:4:10: ports "9000-8000": ports go from 1 to 65535, the first of a range first`},
		{"not a port", "policies:\n- source: a\n  destination: b\n  ports: http\n",
			`network-policies.yml:4:10: ports "http": give a port (8080) or a range (8000-8100)`},
		{"ports a list", "policies:\n- source: a\n  destination: b\n  ports: [80]\n",
			`network-policies.yml:4:10: ports must be a port (8080) or a range`},
		{"no ports", "policies:\n- source: a\n  destination: b\n", "network-policies.yml:2:3: a policy needs ports"},
		{"no destination", "policies:\n- source: a\n  ports: 80\n", "network-policies.yml:2:3: a policy needs destination"},
		{"unknown key", "policies:\n- source: a\n  destination: b\n  port: 80\n",
			`network-policies.yml:4:3: unknown policy attribute "port" (destination, ports, protocol, source) (did you mean "ports"?)`},
		{"unknown top level", "policy:\n- {source: a, destination: b, ports: 80}\n",
			`network-policies.yml:1:1: unknown top-level attribute "policy" of network-policies.yml (policies)`},
		{"bad app name", "policies:\n- {source: my.app, destination: b, ports: 80}\n",
			`network-policies.yml:2:12: source "my.app" is not a valid app name`},
		{"twice", "policies:\n- {source: a, destination: b, ports: 80}\n- {source: a, destination: b, ports: 80}\n",
			"network-policies.yml:3:3: this policy is already declared at network-policies.yml:2:3"},
		{"not a list", "policies: {source: a}\n", "network-policies.yml:1:11: policies must be a list, not a mapping"},
		{"entry not a mapping", "policies: [a]\n", "network-policies.yml:1:12: a policy must be a mapping, not a string"},
		{"bad yaml", "policies: [\n", "invalid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			np := ParseNetworkPolicies("network-policies.yml", []byte(tt.yaml))
			var all []string
			for _, d := range np.Diagnostics.Errors() {
				all = append(all, d.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), tt.want) {
				t.Fatalf("errors %q, want one with %q", all, tt.want)
			}
			if len(np.Policies) != 0 && tt.name != "twice" {
				t.Errorf("a bad entry is kept: %+v", np.Policies)
			}
		})
	}
}

// TestLoadNetworkPolicies: network-policies.yml files anywhere in the tree
// are read; an app no manifest declares, and a policy declared in two
// files, are errors at the policy.
func TestLoadNetworkPolicies(t *testing.T) {
	fsys := fstest.MapFS{
		"front/manifest.yml":   {Data: []byte("applications:\n- name: frontend\n")},
		"back/manifest.yml":    {Data: []byte("applications:\n- name: backend\n")},
		"network-policies.yml": {Data: []byte("policies:\n- {source: frontend, destination: backend, ports: 8080}\n- {source: frontend, destination: db, ports: 5432}\n")},
		"back/network-policies.yml": {Data: []byte("policies:\n- {source: frontend, destination: backend, ports: 8080}\n" +
			"- {source: backend, destination: frontend, protocol: udp, ports: 53}\n")},
	}
	set := LoadFS(fsys, ".")
	var got []string
	for _, p := range set.NetworkPolicies {
		got = append(got, p.Source+">"+p.Destination+" "+p.Protocol+":"+p.Ports.String()+" "+p.Pos.String())
	}
	want := "frontend>backend tcp:8080 back/network-policies.yml:2:3," +
		"backend>frontend udp:53 back/network-policies.yml:3:3," +
		"frontend>db tcp:5432 network-policies.yml:3:3"
	if strings.Join(got, ",") != want {
		t.Errorf("policies %s\nwant %s", strings.Join(got, ","), want)
	}
	var errs []string
	for _, d := range set.Diagnostics.Errors() {
		errs = append(errs, d.String())
	}
	for _, w := range []string{
		`network-policies.yml:2:3: this policy is already declared at back/network-policies.yml:2:3`,
		`network-policies.yml:3:3: network policy names app "db", which no manifest of the space declares`,
	} {
		if !strings.Contains(strings.Join(errs, "\n"), w) {
			t.Errorf("errors %q, want one with %q", errs, w)
		}
	}
}
