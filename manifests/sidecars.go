package manifests

import (
	"maps"
	"regexp"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// sidecarNameRE is what a sidecar's name must look like: it tags the
// sidecar's log lines and names its process in the container.
var sidecarNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// readSidecars reads `sidecars: [{name, process_types, command, memory}]`
// (Cloud Foundry's): processes run in the container of each instance of
// the process types they name.
func readSidecars(a *appState, k, v *yaml.Node) {
	list := resolve(v)
	if list.Kind != yaml.SequenceNode {
		a.errorf(list, "sidecars must be a list, not a %s", kindName(list))
		return
	}
	a.sidecarsNode = k
	seen := map[string]bool{}
	for _, item := range list.Content {
		m, ok := a.mapping(k, item)
		if !ok {
			continue
		}
		var sc model.Sidecar
		has := map[string]bool{}
		good := true
		for _, p := range a.pairs(m) {
			has[p.key.Value] = true
			switch p.key.Value {
			case "name":
				sc.Name, _ = a.str(p.key, p.val, false)
				if sc.Name != "" && !sidecarNameRE.MatchString(sc.Name) {
					a.errorf(resolve(p.val), "sidecar name %q is not valid: use letters, digits, -, _ and . (at most 63, starting with a letter or digit)", sc.Name)
					good = false
				}
			case "process_types":
				types, ok := a.strList(p.key, p.val)
				if ok && len(types) == 0 {
					a.errorf(resolve(p.val), "sidecar process_types is empty: name at least one process type (web)")
				}
				good = good && ok && len(types) > 0
				slices.Sort(types)
				sc.ProcessTypes = slices.Compact(types)
			case "command":
				sc.Command, _ = a.str(p.key, p.val, false)
			case "memory":
				mb, ok := a.size(p.key, p.val)
				good = good && ok
				sc.MemoryMB = int64(mb)
			default:
				a.errorf(p.key, "unknown sidecar attribute %q (name, process_types, command, memory)%s",
					p.key.Value, suggest(p.key.Value, []string{"name", "process_types", "command", "memory"}))
				good = false
			}
		}
		for _, need := range []string{"name", "process_types", "command"} {
			if !has[need] {
				a.errorf(m, "a sidecar needs %s", need)
				good = false
			}
		}
		if has["command"] && sc.Command == "" {
			a.errorf(m, "sidecar %q: command is empty", sc.Name)
			good = false
		}
		if sc.Name != "" && seen[sc.Name] {
			a.errorf(m, "sidecar %q is declared twice", sc.Name)
			good = false
		}
		seen[sc.Name] = true
		if good {
			a.app.Sidecars = append(a.app.Sidecars, sc)
		}
	}
}

// checkSidecars checks the sidecars' memory against the app's: together
// it must be less than the instance's limit, inside which it is counted
// (Cloud Foundry's rule).
func (a *appState) checkSidecars() {
	// The sidecars of each process type must fit in its instances' memory.
	limits := map[string]int{model.ProcessWeb: a.app.MemoryMB}
	for _, p := range a.app.Processes {
		limits[p.Type] = p.MemoryMB
	}
	sums := map[string]int64{}
	for _, sc := range a.app.Sidecars {
		for _, t := range sc.ProcessTypes {
			if _, ok := limits[t]; !ok {
				a.warnf(a.sidecarsNode, "sidecar %s joins process type %q, which the app does not have: it runs nowhere", sc.Name, t)
				continue
			}
			sums[t] += sc.MemoryMB
		}
	}
	for _, t := range slices.Sorted(maps.Keys(sums)) {
		if sum := sums[t]; sum > 0 && sum >= int64(limits[t]) {
			what := "the app's memory"
			if t != model.ProcessWeb {
				what = "process " + t + "'s memory"
			}
			a.errorf(a.sidecarsNode, "the sidecars' memory (%d MB together) must be less than %s (%d MB): it is counted inside each instance's limit", sum, what, limits[t])
		}
	}
}
