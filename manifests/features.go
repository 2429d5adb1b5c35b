package manifests

import (
	"sort"

	"gopkg.in/yaml.v3"
)

// appFeatures are Cloud Foundry's app features (the manifest's features:
// mapping of feature to true or false), each with what driftless does
// instead: driftless turns none of them on or off, so each one gives a
// warning that says so.
var appFeatures = map[string]string{
	"ssh":                      "SSH into instances is not offered by driftless",
	"revisions":                "every commit is a release, and a revert is a rollback",
	"service-binding-k8s":      "bindings are always also files under SERVICE_BINDING_ROOT (/bindings), as servicebinding.io lays them out",
	"file-based-vcap-services": "bindings are always also files under SERVICE_BINDING_ROOT (/bindings), beside VCAP_SERVICES in the environment",
}

// appFeatureNames lists the app features, sorted.
func appFeatureNames() []string {
	out := make([]string, 0, len(appFeatures))
	for k := range appFeatures {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// readFeatures reads features: a mapping of feature to a boolean. Every
// feature, known or not, is a warning (driftless switches none of them);
// a value that is not a mapping, or a feature that is not true or false,
// is an error, as in Cloud Foundry.
func readFeatures(a *appState, k, v *yaml.Node) {
	m, ok := a.mapping(k, v)
	if !ok {
		return
	}
	for _, p := range a.pairs(m) {
		name := p.key.Value
		if _, ok := a.boolean(&yaml.Node{Value: "features." + name}, p.val); !ok {
			continue
		}
		if instead, known := appFeatures[name]; known {
			a.warnf(p.key, "feature %q is ignored: %s", name, instead)
			continue
		}
		a.warnf(p.key, "feature %q is not a Cloud Foundry app feature driftless knows, and is ignored%s", name, suggest(name, appFeatureNames()))
	}
}
