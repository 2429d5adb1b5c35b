package manifests

import (
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// ProcessDecl is one entry of an app's processes list other than web (a
// web entry sets the app's own attributes). What it leaves out is the
// app's: its memory, disk and log rate limit, the Procfile's or the app's command; its
// health check is process unless it gives one, as in Cloud Foundry.
type ProcessDecl struct {
	Type      string
	Instances int
	Command   string
	MemoryMB  int
	DiskMB    int
	// LogRateLimit is the bytes of log lines per second each instance
	// may ship (log-rate-limit-per-second); 0 is no limit.
	LogRateLimit int64
	HealthCheck  model.HealthCheck
	Pos          model.Position
}

// processAttrs are the attributes of a processes entry, read into a
// processState.
var processAttrs = map[string]func(ps *processState, k, v *yaml.Node){
	"type":    func(ps *processState, k, v *yaml.Node) { ps.decl.Type, _ = ps.a.str(k, v, false) },
	"command": func(ps *processState, k, v *yaml.Node) { ps.decl.Command = nullOrString(ps.a, k, v) },
	"instances": func(ps *processState, k, v *yaml.Node) {
		ps.decl.Instances = nonNegative(ps.a, k, v, ps.decl.Instances)
	},
	"memory": func(ps *processState, k, v *yaml.Node) { ps.decl.MemoryMB = orKeep(ps.a.size(k, v))(ps.decl.MemoryMB) },
	"disk_quota": func(ps *processState, k, v *yaml.Node) {
		ps.decl.DiskMB = orKeep(ps.a.size(k, v))(ps.decl.DiskMB)
	},
	"health-check-type": func(ps *processState, k, v *yaml.Node) {
		if t, ok := healthType(ps.a, k, v); ok {
			ps.decl.HealthCheck.Type = t
		}
	},
	"health-check-http-endpoint": func(ps *processState, k, v *yaml.Node) {
		if e, ok := httpEndpoint(ps.a, k, v); ok {
			ps.decl.HealthCheck.Endpoint = e
		}
	},
	"health-check-invocation-timeout": func(ps *processState, k, v *yaml.Node) {
		ps.decl.HealthCheck.InvocationTimeoutSec = positive(ps.a, k, v, ps.decl.HealthCheck.InvocationTimeoutSec)
	},
	"timeout": func(ps *processState, k, v *yaml.Node) {
		ps.decl.HealthCheck.TimeoutSec = positive(ps.a, k, v, ps.decl.HealthCheck.TimeoutSec)
	},
	"health-check-interval": func(ps *processState, k, v *yaml.Node) {
		ps.decl.HealthCheck.IntervalSec = positive(ps.a, k, v, ps.decl.HealthCheck.IntervalSec)
	},
	"readiness-health-check-type": func(ps *processState, k, v *yaml.Node) {
		if t, ok := readinessType(ps.a, k, v); ok {
			ps.decl.HealthCheck.Readiness.Type = t
		}
	},
	"readiness-health-check-http-endpoint": func(ps *processState, k, v *yaml.Node) {
		if e, ok := httpEndpoint(ps.a, k, v); ok {
			ps.decl.HealthCheck.Readiness.Endpoint = e
		}
	},
	"readiness-health-check-invocation-timeout": func(ps *processState, k, v *yaml.Node) {
		ps.decl.HealthCheck.Readiness.InvocationTimeoutSec = positive(ps.a, k, v, 0)
	},
	"readiness-health-check-interval": func(ps *processState, k, v *yaml.Node) {
		ps.decl.HealthCheck.Readiness.IntervalSec = positive(ps.a, k, v, 0)
	},
	"log-rate-limit-per-second": func(ps *processState, k, v *yaml.Node) {
		if b, ok := ps.a.logRate(k, v); ok {
			ps.decl.LogRateLimit = b
		}
	},
}

// processState is one processes entry being read.
type processState struct {
	a    *appState
	decl ProcessDecl
	// given holds the attributes the entry sets.
	given map[string]bool
}

// processAttrNames lists processAttrs' keys, sorted, for suggestions.
func processAttrNames() []string {
	out := make([]string, 0, len(processAttrs))
	for k := range processAttrs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// readProcesses reads processes: a list of process types, each with its
// own command, instances, limits and health check. The web entry's
// attributes are the app's own (applied in finish, so that they win over
// the app-level ones as in Cloud Foundry); the others become Processes.
func readProcesses(a *appState, k, v *yaml.Node) {
	list := resolve(v)
	if list.Kind != yaml.SequenceNode {
		a.errorf(list, "processes must be a list of process types, not a %s", kindName(list))
		return
	}
	seen := map[string]bool{}
	for _, item := range list.Content {
		it := resolve(item)
		if it.Kind != yaml.MappingNode {
			a.errorf(it, "each process must be a mapping with at least a type, not a %s", kindName(it))
			continue
		}
		ps := &processState{a: a, given: map[string]bool{},
			decl: ProcessDecl{Instances: model.DefaultInstances, Pos: a.pos(it)}}
		for _, p := range a.pairs(it) {
			read, ok := processAttrs[p.key.Value]
			if !ok {
				a.errorf(p.key, "unknown process attribute %q%s", p.key.Value, suggest(p.key.Value, processAttrNames()))
				continue
			}
			ps.given[p.key.Value] = true
			read(ps, p.key, p.val)
		}
		t := ps.decl.Type
		switch {
		case !ps.given["type"]:
			a.errorf(it, "a process needs a type (web, worker, …)")
			continue
		case !model.ProcessTypeRE.MatchString(t):
			a.errorf(it, "process type %q is not valid: use lower-case letters, digits, - and _ (at most 63)", t)
			continue
		case seen[t]:
			a.errorf(it, "process type %q is given twice", t)
			continue
		}
		seen[t] = true
		if t == model.ProcessWeb {
			a.webProcess = ps
			continue
		}
		a.app.Processes = append(a.app.Processes, ps.decl)
		a.processGiven = append(a.processGiven, ps.given)
	}
}

// finishProcesses applies the web entry over the app's attributes and
// fills what the other entries leave to the app.
func (a *appState) finishProcesses() {
	if w := a.webProcess; w != nil {
		if w.given["command"] {
			a.app.Command = w.decl.Command
		}
		if w.given["instances"] {
			a.app.Instances = w.decl.Instances
		}
		if w.given["memory"] {
			a.app.MemoryMB = w.decl.MemoryMB
		}
		if w.given["disk_quota"] {
			a.app.DiskMB = w.decl.DiskMB
		}
		if w.given["log-rate-limit-per-second"] {
			a.app.LogRateLimit = w.decl.LogRateLimit
		}
		hc := &a.app.HealthCheck
		if w.given["health-check-type"] {
			hc.Type = w.decl.HealthCheck.Type
		}
		if w.given["health-check-http-endpoint"] {
			hc.Endpoint = w.decl.HealthCheck.Endpoint
		}
		if w.given["health-check-invocation-timeout"] {
			hc.InvocationTimeoutSec = w.decl.HealthCheck.InvocationTimeoutSec
		}
		if w.given["timeout"] {
			hc.TimeoutSec = w.decl.HealthCheck.TimeoutSec
		}
		if w.given["health-check-interval"] {
			hc.IntervalSec = w.decl.HealthCheck.IntervalSec
		}
		wr, rc := w.decl.HealthCheck.Readiness, &hc.Readiness
		if w.given["readiness-health-check-type"] {
			rc.Type = wr.Type
		}
		if w.given["readiness-health-check-http-endpoint"] {
			rc.Endpoint = wr.Endpoint
		}
		if w.given["readiness-health-check-invocation-timeout"] {
			rc.InvocationTimeoutSec = wr.InvocationTimeoutSec
		}
		if w.given["readiness-health-check-interval"] {
			rc.IntervalSec = wr.IntervalSec
		}
	}
	for i := range a.app.Processes {
		p, given := &a.app.Processes[i], a.processGiven[i]
		if !given["memory"] {
			p.MemoryMB = a.app.MemoryMB
		}
		if !given["disk_quota"] {
			p.DiskMB = a.app.DiskMB
		}
		if !given["log-rate-limit-per-second"] {
			p.LogRateLimit = a.app.LogRateLimit
		}
		if !given["health-check-type"] {
			p.HealthCheck.Type = model.HealthProcess
		}
		if p.HealthCheck.Type == model.HealthHTTP && p.HealthCheck.Endpoint == "" {
			p.HealthCheck.Endpoint = "/"
		}
		if p.HealthCheck.TimeoutSec == 0 {
			p.HealthCheck.TimeoutSec = model.DefaultStartTimeout
		}
		if rc := &p.HealthCheck.Readiness; rc.Type == model.HealthHTTP && rc.Endpoint == "" {
			rc.Endpoint = "/"
		} else if !rc.Probed() {
			*rc = model.ReadinessCheck{Type: rc.Type}
		}
	}
}

// nonNegative reads a count that may be 0.
func nonNegative(a *appState, k, v *yaml.Node, old int) int {
	n, ok := a.integer(k, v)
	if !ok {
		return old
	}
	if n < 0 {
		a.errorf(resolve(v), "%s must be 0 or more, not %d", k.Value, n)
		return old
	}
	return n
}
