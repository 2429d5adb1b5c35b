package agents

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/model"
)

func TestPolicyRules(t *testing.T) {
	tcp8080 := model.IngressRule{From: "front", Protocol: "tcp", Ports: model.PortRange{Start: 8080, End: 8080}}
	udpRange := model.IngressRule{From: "front", Protocol: "udp", Ports: model.PortRange{Start: 9000, End: 9100}}
	rule := func(src, dst string, ing model.IngressRule) network.PolicyRule {
		return network.PolicyRule{Source: src, Destination: dst, Protocol: ing.Protocol, Ports: ing.Ports}
	}
	tests := []struct {
		name  string
		insts []localInstance
		want  []network.PolicyRule
	}{
		{name: "no policies", insts: []localInstance{
			{Space: "dev", App: "front", IP: "10.0.0.2"}, {Space: "dev", App: "back", IP: "10.0.0.3"}}},
		{name: "one source instance, one destination instance", insts: []localInstance{
			{Space: "dev", App: "front", IP: "10.0.0.2"},
			{Space: "dev", App: "back", IP: "10.0.0.3", Ingress: []model.IngressRule{tcp8080}}},
			want: []network.PolicyRule{rule("10.0.0.2", "10.0.0.3", tcp8080)}},
		{name: "every pair of instances, each rule", insts: []localInstance{
			{Space: "dev", App: "front", IP: "10.0.0.2"}, {Space: "dev", App: "front", IP: "10.0.0.4"},
			{Space: "dev", App: "back", IP: "10.0.0.3", Ingress: []model.IngressRule{tcp8080, udpRange}},
			{Space: "dev", App: "back", IP: "10.0.0.5", Ingress: []model.IngressRule{tcp8080, udpRange}}},
			want: []network.PolicyRule{
				rule("10.0.0.2", "10.0.0.3", tcp8080), rule("10.0.0.2", "10.0.0.3", udpRange),
				rule("10.0.0.4", "10.0.0.3", tcp8080), rule("10.0.0.4", "10.0.0.3", udpRange),
				rule("10.0.0.2", "10.0.0.5", tcp8080), rule("10.0.0.2", "10.0.0.5", udpRange),
				rule("10.0.0.4", "10.0.0.5", tcp8080), rule("10.0.0.4", "10.0.0.5", udpRange)}},
		{name: "the source app of another space is not allowed", insts: []localInstance{
			{Space: "prod", App: "front", IP: "10.0.0.2"},
			{Space: "dev", App: "back", IP: "10.0.0.3", Ingress: []model.IngressRule{tcp8080}}}},
		{name: "no source instance on the cell", insts: []localInstance{
			{Space: "dev", App: "back", IP: "10.0.0.3", Ingress: []model.IngressRule{tcp8080}}}},
		{name: "an instance without an address yet", insts: []localInstance{
			{Space: "dev", App: "front"}, {Space: "dev", App: "front", IP: "10.0.0.2"},
			{Space: "dev", App: "back", Ingress: []model.IngressRule{tcp8080}},
			{Space: "dev", App: "back", IP: "10.0.0.3", Ingress: []model.IngressRule{tcp8080}}},
			want: []network.PolicyRule{rule("10.0.0.2", "10.0.0.3", tcp8080)}},
		{name: "an app allowed to reach itself", insts: []localInstance{
			{Space: "dev", App: "front", IP: "10.0.0.2", Ingress: []model.IngressRule{tcp8080}},
			{Space: "dev", App: "front", IP: "10.0.0.3", Ingress: []model.IngressRule{tcp8080}}},
			want: []network.PolicyRule{
				rule("10.0.0.2", "10.0.0.2", tcp8080), rule("10.0.0.3", "10.0.0.2", tcp8080),
				rule("10.0.0.2", "10.0.0.3", tcp8080), rule("10.0.0.3", "10.0.0.3", tcp8080)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policyRules(tt.insts)
			slices.Reverse(tt.insts)
			if again := policyRules(tt.insts); !slices.Equal(got, again) {
				t.Errorf("order of the instances changes the rules:\n%v\n%v", got, again)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("rules:\n%v\nwant:\n%v", got, tt.want)
			}
		})
	}
}

// TestPolicyLoop: the cell's rules follow its instances — written when
// the destination and source run, gone when the source stops.
func TestPolicyLoop(t *testing.T) {
	c := newTestCell(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); c.policyLoop(ctx) }()
	defer func() { cancel(); <-done }()

	ing := model.IngressRule{From: "front", Protocol: "tcp", Ports: model.PortRange{Start: 8080, End: 8080}}
	start := func(guid, app string, ingress []model.IngressRule) {
		t.Helper()
		ref := testRef(guid)
		ref.App = app
		run := testRun()
		run.Ingress = ingress
		c.mu.Lock()
		err := c.acceptLocked(ref, run)
		c.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		c.waitState(t, guid, model.StateRunning)
	}
	start("b1", "back", []model.IngressRule{ing})
	start("f1", "front", nil)
	ip := func(guid string) string {
		att, ok := c.net.Lookup(guid)
		if !ok {
			t.Fatalf("%s has no attachment", guid)
		}
		return att.IP
	}
	want := []network.PolicyRule{{Source: ip("f1"), Destination: ip("b1"), Protocol: "tcp", Ports: ing.Ports}}
	waitFor(t, fmt.Sprintf("rules %v", want), func() bool { return slices.Equal(c.net.policyRules(), want) })

	c.stop("f1")
	c.waitState(t, "f1", "")
	waitFor(t, "no rules once front stopped", func() bool { return len(c.net.policyRules()) == 0 })
}
