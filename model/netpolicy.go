package model

import (
	"fmt"
	"strconv"
	"strings"
)

// NetworkPoliciesFile is the file in an apps repository that allows apps
// of the space to reach each other's instances directly (container to
// container), as Cloud Foundry's `cf add-network-policy` does. Without a
// policy, apps reach each other only through their routes.
const NetworkPoliciesFile = "network-policies.yml"

// The protocols a network policy may allow.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// PortRange is an inclusive range of ports, Start ≤ End (one port: Start
// = End).
type PortRange struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// ParsePortRange reads "8080" or "8000-8100" (ports 1 to 65535).
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		hi = lo
	}
	start, err1 := strconv.Atoi(strings.TrimSpace(lo))
	end, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("ports %q: give a port (8080) or a range (8000-8100)", s)
	}
	if start < 1 || end > 65535 || start > end {
		return PortRange{}, fmt.Errorf("ports %q: ports go from 1 to 65535, the first of a range first", s)
	}
	return PortRange{Start: start, End: end}, nil
}

// String is the range as written in a network policy: "8080", "8000-8100".
func (r PortRange) String() string {
	if r.Start == r.End {
		return strconv.Itoa(r.Start)
	}
	return fmt.Sprintf("%d-%d", r.Start, r.End)
}

// NetworkPolicy is one rule of a space's network-policies.yml: instances
// of the Source app may open connections (Protocol) to instances of the
// Destination app on Ports. Both apps are in the space of the source of
// the file; the rule is one-way.
type NetworkPolicy struct {
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	Protocol    string    `json:"protocol"`
	Ports       PortRange `json:"ports"`
	// Pos is where the rule is declared.
	Pos Position `json:"pos"`
}

// Ingress is the rule as the destination app's release carries it.
func (p NetworkPolicy) Ingress() IngressRule {
	return IngressRule{From: p.Source, Protocol: p.Protocol, Ports: p.Ports}
}

// IngressRule lets instances of the app From (in the same space) reach an
// app's instances on Ports over Protocol. A release carries those of its
// app (RunSpec.Ingress): a cell allows the traffic between the instances
// it runs.
type IngressRule struct {
	From     string    `json:"from"`
	Protocol string    `json:"protocol"`
	Ports    PortRange `json:"ports"`
}

// String is the rule as logs show it: "frontend tcp:8080".
func (r IngressRule) String() string {
	return r.From + " " + r.Protocol + ":" + r.Ports.String()
}
