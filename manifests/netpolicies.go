package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// NetworkPolicies is one parsed network-policies.yml: the apps of the
// space that may reach each other's instances directly.
//
//	policies:
//	- source: frontend
//	  destination: backend
//	  protocol: tcp        # or udp; tcp when left out
//	  ports: 8080          # or a range: 8000-8100
type NetworkPolicies struct {
	File        string
	Policies    []model.NetworkPolicy
	Diagnostics Diagnostics
}

// policyKeys are the attributes of an entry under policies:.
var policyKeys = []string{"destination", "ports", "protocol", "source"}

// ParseNetworkPolicies reads one network-policies.yml. Whether the apps it
// names are declared is checked with the whole tree (LoadFS). It never
// returns nil: problems are in its Diagnostics.
func ParseNetworkPolicies(file string, data []byte) *NetworkPolicies {
	np := &NetworkPolicies{File: file}
	r := &reporter{file: file}
	defer func() { np.Diagnostics = append(np.Diagnostics, r.diags...); sortDiags(np.Diagnostics) }()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			r.diags = append(r.diags, yamlError(file, err))
		}
		return np // an empty file allows nothing
	}
	if len(doc.Content) == 0 {
		return np
	}
	root, ok := r.mapping(&yaml.Node{Value: model.NetworkPoliciesFile}, doc.Content[0])
	if !ok {
		return np
	}
	seen := map[model.NetworkPolicy]model.Position{}
	for _, p := range r.pairs(root) {
		if p.key.Value != "policies" {
			r.errorf(p.key, "unknown top-level attribute %q of %s (policies)%s", p.key.Value, model.NetworkPoliciesFile,
				suggest(p.key.Value, []string{"policies"}))
			continue
		}
		list := resolve(p.val)
		if list.Tag == "!!null" {
			continue
		}
		if list.Kind != yaml.SequenceNode {
			r.errorf(list, "policies must be a list, not a %s", kindName(list))
			continue
		}
		for _, item := range list.Content {
			pol, ok := r.parsePolicy(item)
			if !ok {
				continue
			}
			key := pol
			key.Pos = model.Position{}
			if first, dup := seen[key]; dup {
				r.errorf(nodeAt(pol.Pos), "this policy is already declared at %s", first)
				continue
			}
			seen[key] = pol.Pos
			np.Policies = append(np.Policies, pol)
		}
	}
	return np
}

// parsePolicy reads one entry of policies:.
func (r *reporter) parsePolicy(n *yaml.Node) (model.NetworkPolicy, bool) {
	n = resolve(n)
	pol := model.NetworkPolicy{Protocol: model.ProtocolTCP, Pos: r.pos(n)}
	m, ok := r.mapping(&yaml.Node{Value: "a policy"}, n)
	if !ok {
		return pol, false
	}
	ok = true
	var hasPorts bool
	for _, p := range r.pairs(m) {
		switch p.key.Value {
		case "source", "destination":
			name, good := r.str(p.key, p.val, false)
			if good && !appNameRE.MatchString(name) {
				r.errorf(resolve(p.val), "%s %q is not a valid app name", p.key.Value, name)
				good = false
			}
			ok = ok && good
			if p.key.Value == "source" {
				pol.Source = name
			} else {
				pol.Destination = name
			}
		case "protocol":
			proto, good := r.str(p.key, p.val, false)
			proto = strings.ToLower(proto)
			if good && proto != model.ProtocolTCP && proto != model.ProtocolUDP {
				r.errorf(resolve(p.val), "protocol %q: use tcp or udp", proto)
				good = false
			}
			ok = ok && good
			pol.Protocol = proto
		case "ports":
			hasPorts = true
			v := resolve(p.val)
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				r.errorf(v, "ports must be a port (8080) or a range (\"8000-8100\"), not a %s", kindName(v))
				ok = false
				continue
			}
			pr, err := model.ParsePortRange(v.Value)
			if err != nil {
				r.errorf(v, "%v", err)
				ok = false
				continue
			}
			pol.Ports = pr
		default:
			r.errorf(p.key, "unknown policy attribute %q (%s)%s", p.key.Value, strings.Join(policyKeys, ", "), suggest(p.key.Value, policyKeys))
			ok = false
		}
	}
	for _, need := range []struct {
		name string
		has  bool
	}{{"source", pol.Source != ""}, {"destination", pol.Destination != ""}, {"ports", hasPorts}} {
		if !need.has && ok {
			r.errorf(n, "a policy needs %s", need.name)
			ok = false
		}
	}
	return pol, ok
}

// checkPolicyApps reports, at the policy, every app a policy names that
// no manifest of the tree declares.
func checkPolicyApps(pols []model.NetworkPolicy, apps map[string]bool) Diagnostics {
	var out Diagnostics
	for _, p := range pols {
		for _, name := range []string{p.Source, p.Destination} {
			if !apps[name] {
				out = append(out, model.Problem{Position: p.Pos, Severity: model.Error,
					Message: fmt.Sprintf("network policy names app %q, which no manifest of the space declares", name)})
			}
		}
	}
	return out
}
