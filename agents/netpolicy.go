package agents

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/model"
)

// Network policies (network-policies.yml in git) reach the cell inside
// each instance's RunSpec: Ingress lists the apps of the space that may
// reach the instance's app. The cell allows them between the instances it
// runs on its bridge (network.PolicyRule, before the walls' FORWARD drop),
// and rewrites its rules whenever an instance changes state, and every
// policyResync. Instances on other cells are reached through the router:
// there is no overlay network between cells.

// policyResync is how often the cell rewrites its policy rules even if no
// instance changed (they are rewritten only when they differ).
const policyResync = 15 * time.Second

// localInstance is one instance of the cell as the policy rules need it.
type localInstance struct {
	Space, App, IP string
	Ingress        []model.IngressRule
}

// policyRules are the rules that let the cell's instances reach each
// other as their apps' Ingress allow: for each instance whose app allows
// an app of its space, one rule per instance of that app (itself
// included). Sorted and without duplicates.
func policyRules(insts []localInstance) []network.PolicyRule {
	byApp := map[model.AppKey][]string{}
	for _, in := range insts {
		if in.IP != "" {
			k := model.AppKey{Space: in.Space, Name: in.App}
			byApp[k] = append(byApp[k], in.IP)
		}
	}
	var out []network.PolicyRule
	for _, dst := range insts {
		if dst.IP == "" {
			continue
		}
		for _, ing := range dst.Ingress {
			for _, src := range byApp[model.AppKey{Space: dst.Space, Name: ing.From}] {
				out = append(out, network.PolicyRule{Source: src, Destination: dst.IP, Protocol: ing.Protocol, Ports: ing.Ports})
			}
		}
	}
	slices.SortFunc(out, func(a, b network.PolicyRule) int {
		return cmp.Or(cmp.Compare(a.Destination, b.Destination), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(a.Ports.Start, b.Ports.Start), cmp.Compare(a.Ports.End, b.Ports.End))
	})
	return slices.Compact(out)
}

// kickPolicies asks policyLoop to rewrite the rules soon; it never blocks.
func (a *Agent) kickPolicies() {
	select {
	case a.policyKick <- struct{}{}:
	default:
	}
}

// localInstances are the cell's instances that are (being) started, with
// their address on the bridge once they have one.
func (a *Agent) localInstances() []localInstance {
	a.mu.Lock()
	var out []localInstance
	var guids []string
	for guid, in := range a.insts {
		if in.stopping || in.status.State != model.StateStarting && in.status.State != model.StateRunning {
			continue
		}
		out = append(out, localInstance{Space: in.status.Space, App: in.status.App, Ingress: in.run.Ingress})
		guids = append(guids, guid)
	}
	a.mu.Unlock()
	for i, guid := range guids {
		if att, ok := a.net.Lookup(guid); ok && att != nil {
			out[i].IP = att.IP
		}
	}
	return out
}

// syncPolicies rewrites the cell's policy rules if they differ from those
// it wrote last (applied; nil before the first write).
func (a *Agent) syncPolicies(ctx context.Context, applied *[]network.PolicyRule) {
	rules := policyRules(a.localInstances())
	if *applied != nil && slices.Equal(rules, *applied) {
		return
	}
	if err := a.net.SetPolicyRules(ctx, rules); err != nil {
		a.log.Warn("writing the network policy rules", "err", err)
		*applied = nil
		return
	}
	if rules == nil {
		rules = []network.PolicyRule{}
	}
	*applied = rules
	a.log.Debug("network policy rules written", "rules", len(rules))
}

// policyLoop keeps the cell's policy rules in step with its instances
// until ctx ends.
func (a *Agent) policyLoop(ctx context.Context) {
	var applied []network.PolicyRule
	a.syncPolicies(ctx, &applied)
	t := time.NewTicker(policyResync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.policyKick:
		case <-t.C:
		}
		a.syncPolicies(ctx, &applied)
	}
}
