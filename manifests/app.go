package manifests

import (
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// appNameRE is what an app name must look like: it becomes a host name
// label, a Consul service name and a container id part.
var appNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// attribute is how one app attribute is read.
type attribute struct {
	// read parses the value into the app; nil for attributes driftless
	// does not run yet (they give a warning).
	read func(a *appState, k, v *yaml.Node)
	// unsupported explains what driftless does instead, for warnings.
	unsupported string
}

// appState is an app being parsed.
type appState struct {
	*reporter
	app               App
	legacyHosts       []string
	legacyDomains     []string
	legacyNode        *yaml.Node
	noHostname        bool
	hasRoutes, hasBPs bool
	hasBuildpack      bool
	endpointNode      *yaml.Node
	// webProcess is the processes entry of type web; processGiven holds,
	// per entry of app.Processes, the attributes it sets.
	webProcess   *processState
	processGiven []map[string]bool
	sidecarsNode *yaml.Node
}

// attributes are every app attribute of the Cloud Foundry manifest.
var attributes map[string]attribute

func init() {
	notYet := func(what string) attribute { return attribute{unsupported: what} }
	attributes = map[string]attribute{
		"name":                            {read: readName},
		"instances":                       {read: readInstances},
		"memory":                          {read: func(a *appState, k, v *yaml.Node) { a.app.MemoryMB = orKeep(a.size(k, v))(a.app.MemoryMB) }},
		"disk_quota":                      {read: func(a *appState, k, v *yaml.Node) { a.app.DiskMB = orKeep(a.size(k, v))(a.app.DiskMB) }},
		"disk-quota":                      {read: func(a *appState, k, v *yaml.Node) { a.app.DiskMB = orKeep(a.size(k, v))(a.app.DiskMB) }},
		"buildpacks":                      {read: readBuildpacks},
		"buildpack":                       {read: readBuildpack},
		"stack":                           {read: func(a *appState, k, v *yaml.Node) { a.app.Stack, _ = a.str(k, v, false) }},
		"command":                         {read: func(a *appState, k, v *yaml.Node) { a.app.Command = nullOrString(a, k, v) }},
		"path":                            {read: readPath},
		"env":                             {read: readEnv},
		"routes":                          {read: readRoutes},
		"no-route":                        {read: func(a *appState, k, v *yaml.Node) { a.app.NoRoute, _ = a.boolean(k, v) }},
		"random-route":                    {read: func(a *appState, k, v *yaml.Node) { a.app.RandomRoute, _ = a.boolean(k, v) }},
		"default-route":                   {read: func(a *appState, k, v *yaml.Node) { _, _ = a.boolean(k, v) }},
		"services":                        {read: readServices},
		"health-check-type":               {read: readHealthType},
		"health-check-http-endpoint":      {read: readEndpoint},
		"health-check-invocation-timeout": {read: func(a *appState, k, v *yaml.Node) { a.app.HealthCheck.InvocationTimeoutSec = positive(a, k, v, 0) }},
		"timeout": {read: func(a *appState, k, v *yaml.Node) {
			a.app.HealthCheck.TimeoutSec = positive(a, k, v, a.app.HealthCheck.TimeoutSec)
		}},
		"health-check-interval": {read: func(a *appState, k, v *yaml.Node) {
			a.app.HealthCheck.IntervalSec = positive(a, k, v, a.app.HealthCheck.IntervalSec)
		}},
		"readiness-health-check-type":          {read: readReadinessType},
		"readiness-health-check-http-endpoint": {read: readReadinessEndpoint},
		"readiness-health-check-invocation-timeout": {read: func(a *appState, k, v *yaml.Node) {
			a.app.HealthCheck.Readiness.InvocationTimeoutSec = positive(a, k, v, 0)
		}},
		"readiness-health-check-interval": {read: func(a *appState, k, v *yaml.Node) {
			a.app.HealthCheck.Readiness.IntervalSec = positive(a, k, v, 0)
		}},
		"metadata":  {read: readMetadata},
		"features":  {read: readFeatures},
		"processes": {read: readProcesses},
		// Legacy route attributes, converted to routes.
		"host":        {read: func(a *appState, k, v *yaml.Node) { a.legacy(k, v, &a.legacyHosts, false) }},
		"hosts":       {read: func(a *appState, k, v *yaml.Node) { a.legacy(k, v, &a.legacyHosts, true) }},
		"domain":      {read: func(a *appState, k, v *yaml.Node) { a.legacy(k, v, &a.legacyDomains, false) }},
		"domains":     {read: func(a *appState, k, v *yaml.Node) { a.legacy(k, v, &a.legacyDomains, true) }},
		"no-hostname": {read: readNoHostname},
		// Recognised, not run yet.
		"inherit":         notYet("manifest inheritance is not supported; put the attributes in this manifest"),
		"docker":          {read: readDocker},
		"sidecars":        {read: readSidecars},
		"lifecycle":       notYet("lifecycles other than buildpack are not supported"),
		"cnb-credentials": notYet("cloud native buildpacks are not supported"),
		"log-rate-limit-per-second": {read: func(a *appState, k, v *yaml.Node) {
			if b, ok := a.logRate(k, v); ok {
				a.app.LogRateLimit = b
			}
		}},
	}
}

// orKeep returns the parsed value, or the old one when parsing failed.
func orKeep(v int, ok bool) func(int) int {
	return func(old int) int {
		if ok {
			return v
		}
		return old
	}
}

// isAppAttribute reports whether key is a Cloud Foundry app attribute.
func isAppAttribute(key string) bool { _, ok := attributes[key]; return ok }

// appAttributeNames lists the app attributes, sorted.
func appAttributeNames() []string {
	out := make([]string, 0, len(attributes))
	for k := range attributes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parseApp reads one entry of applications; globals are deprecated
// top-level attributes that apply to every app.
func (r *reporter) parseApp(n *yaml.Node, globals map[string]pair) (App, bool) {
	before := len(r.diags)
	if n.Kind != yaml.MappingNode {
		r.errorf(n, "each application must be a mapping with at least a name, not a %s", kindName(n))
		return App{}, false
	}
	a := &appState{reporter: r, app: App{
		Instances: model.DefaultInstances, MemoryMB: model.DefaultMemoryMB, DiskMB: model.DefaultDiskMB,
		Path: ".", HealthCheck: model.HealthCheck{Type: model.DefaultHealthCheck, TimeoutSec: model.DefaultStartTimeout},
		Pos: r.pos(n), Fields: map[string]model.Position{},
	}}
	ps := r.pairs(n)
	own := map[string]bool{}
	for _, p := range ps {
		own[p.key.Value] = true
	}
	var all []pair
	for _, key := range sortedKeys(globals) {
		if !own[key] {
			all = append(all, globals[key])
		}
	}
	all = append(all, ps...)
	for _, p := range all {
		key := p.key.Value
		attr, ok := attributes[key]
		if !ok {
			r.errorf(p.key, "unknown attribute %q%s", key, suggest(key, appAttributeNames()))
			continue
		}
		a.app.Fields[key] = r.pos(p.key)
		if attr.read == nil {
			r.warnf(p.key, "attribute %q is not supported by driftless yet and is ignored: %s", key, attr.unsupported)
			continue
		}
		attr.read(a, p.key, p.val)
	}
	if _, ok := a.app.Fields["name"]; !ok {
		r.errorf(n, "application has no name")
	}
	a.finish()
	if len(r.diags.errorsSince(before)) == 0 {
		a.checkReleaseSize()
	}
	return a.app, len(r.diags.errorsSince(before)) == 0 && a.app.Name != ""
}

// errorsSince returns the errors after the first n diagnostics.
func (ds Diagnostics) errorsSince(n int) Diagnostics { return ds[n:].Errors() }

func sortedKeys(m map[string]pair) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// finish applies what depends on several attributes.
func (a *appState) finish() {
	if a.hasBuildpack && a.hasBPs {
		a.errorf(nodeAt(a.app.Fields["buildpack"]), "give either buildpacks or the deprecated buildpack, not both")
	}
	a.finishProcesses()
	if a.legacyNode != nil || a.noHostname {
		a.convertLegacyRoutes()
	}
	a.checkRouteCount()
	if a.app.NoRoute && len(a.app.Routes) > 0 {
		a.errorf(nodeAt(a.app.Fields["no-route"]), "no-route is true but routes are given; remove one of them")
	}
	if a.endpointNode != nil && a.app.HealthCheck.Type != model.HealthHTTP {
		a.warnf(a.endpointNode, "health-check-http-endpoint is only used when health-check-type is http (it is %s)", a.app.HealthCheck.Type)
	}
	if a.app.HealthCheck.Type == model.HealthHTTP && a.app.HealthCheck.Endpoint == "" {
		a.app.HealthCheck.Endpoint = "/"
	}
	a.finishReadiness()
	a.checkExtras() // docker.go, sidecars.go
}

// nodeAt makes a node carrying a position, for diagnostics about fields.
func nodeAt(p model.Position) *yaml.Node { return &yaml.Node{Line: p.Line, Column: p.Col} }

func readName(a *appState, k, v *yaml.Node) {
	s, ok := a.str(k, v, false)
	if !ok {
		return
	}
	if !appNameRE.MatchString(s) {
		a.errorf(resolve(v), "app name %q is not valid: use letters, digits, - and _ (at most 63, starting with a letter or digit)", s)
		return
	}
	a.app.Name = s
}

func readInstances(a *appState, k, v *yaml.Node) {
	n, ok := a.integer(k, v)
	if !ok {
		return
	}
	if n < 0 {
		a.errorf(resolve(v), "instances must be 0 or more, not %d", n)
		return
	}
	a.app.Instances = n
}

func readBuildpacks(a *appState, k, v *yaml.Node) {
	a.hasBPs = true
	list, ok := a.strList(k, v)
	if ok {
		a.app.Buildpacks = list
	}
}

func readBuildpack(a *appState, k, v *yaml.Node) {
	a.hasBuildpack = true
	s := nullOrString(a, k, v)
	a.warnf(k, "buildpack is deprecated; write buildpacks: [%s]", s)
	if s != "" && s != "default" && s != "null" {
		a.app.Buildpacks = []string{s}
	}
}

// nullOrString reads a string that may be null (meaning "not given").
func nullOrString(a *appState, k, v *yaml.Node) string {
	if rv := resolve(v); rv.Kind == yaml.ScalarNode && rv.Tag == "!!null" {
		return ""
	}
	s, _ := a.str(k, v, false)
	return s
}

// IsArchive reports whether name ends in .jar, .war or .zip (in any case):
// a file an app's path may name, whose contents are the app's source (a
// folder so named is a folder).
func IsArchive(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".jar" || ext == ".war" || ext == ".zip"
}

// readPath reads path: a folder or an archive (IsArchive), relative to the
// manifest's folder; LoadFS checks what it names.
func readPath(a *appState, k, v *yaml.Node) {
	s, ok := a.str(k, v, false)
	if !ok {
		return
	}
	if s == "" {
		a.errorf(resolve(v), "path is empty; leave it out to use the manifest's folder")
		return
	}
	if strings.HasPrefix(s, "/") {
		a.errorf(resolve(v), "path %q must be relative to the manifest's folder", s)
		return
	}
	a.app.Path = path.Clean(s)
}

func readEnv(a *appState, k, v *yaml.Node) {
	env := a.stringMap(k, v)
	for name := range env {
		switch {
		case envNameProblem(name) != "":
			a.errorf(resolve(v), "env: %q is not a valid variable name: %s", name, envNameProblem(name))
			delete(env, name)
		case name == "PORT" || strings.HasPrefix(name, "VCAP_") || strings.HasPrefix(name, "CF_INSTANCE_"):
			a.errorf(resolve(v), "env: %s is set by the platform and cannot be given", name)
			delete(env, name)
		}
	}
	a.checkEnvSize(k, env)
	if len(env) > 0 {
		a.app.Env = env
	}
}

// envNameProblem says why name cannot be an environment variable's name,
// or returns "". As in Cloud Foundry, any name is passed through
// ("will-be-overridden", "a.b") but one that is empty or holds "=" or
// NUL, which no process environment can carry.
func envNameProblem(name string) string {
	switch {
	case name == "":
		return "it is empty"
	case strings.Contains(name, "="):
		return "it holds ="
	case strings.Contains(name, "\x00"):
		return "it holds a NUL character"
	}
	return ""
}

func readServices(a *appState, k, v *yaml.Node) {
	list := resolve(v)
	if list.Kind != yaml.SequenceNode {
		a.errorf(list, "services must be a list, not a %s", kindName(list))
		return
	}
	var names []string
	for _, item := range list.Content {
		it := resolve(item)
		var svc model.AppService
		switch it.Kind {
		case yaml.ScalarNode:
			svc.Name, _ = a.str(k, it, false)
		case yaml.MappingNode:
			for _, p := range a.pairs(it) {
				switch p.key.Value {
				case "name":
					svc.Name, _ = a.str(p.key, p.val, false)
				case "parameters":
					svc.Parameters = a.anyMap(p.key, p.val)
				case "binding_name":
					svc.BindingName, _ = a.str(p.key, p.val, false)
				default:
					a.errorf(p.key, "unknown service attribute %q (name, parameters, binding_name)", p.key.Value)
				}
			}
			if svc.Name == "" {
				a.errorf(it, "a service entry needs a name")
				continue
			}
		default:
			a.errorf(it, "a service is a name or a mapping with name, not a %s", kindName(it))
			continue
		}
		if svc.Name == "" {
			continue
		}
		if slices.Contains(names, svc.Name) {
			a.errorf(it, "service %q is bound twice", svc.Name)
			continue
		}
		names = append(names, svc.Name)
		a.app.Services = append(a.app.Services, svc)
	}
}

func readHealthType(a *appState, k, v *yaml.Node) {
	if t, ok := healthType(a, k, v); ok {
		a.app.HealthCheck.Type = t
	}
}

// healthType reads a health check type as Cloud Foundry spells it.
func healthType(a *appState, k, v *yaml.Node) (model.HealthCheckType, bool) {
	s, ok := a.str(k, v, false)
	if !ok {
		return "", false
	}
	t, err := model.ParseHealthCheckType(s)
	if err != nil {
		a.errorf(resolve(v), "%s %q is not one of port, http, process", k.Value, s)
		return "", false
	}
	if s == "none" {
		a.warnf(resolve(v), "%s none is deprecated; it means process", k.Value)
	}
	return t, true
}

func readEndpoint(a *appState, k, v *yaml.Node) {
	if e, ok := httpEndpoint(a, k, v); ok {
		a.endpointNode = k
		a.app.HealthCheck.Endpoint = e
	}
}

// httpEndpoint reads an HTTP health check's path.
func httpEndpoint(a *appState, k, v *yaml.Node) (string, bool) {
	s, ok := a.str(k, v, false)
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(s, "/") {
		a.errorf(resolve(v), "%s %q must start with /", k.Value, s)
		return "", false
	}
	return s, true
}

// positive reads a number of seconds that must be more than zero.
func positive(a *appState, k, v *yaml.Node, old int) int {
	n, ok := a.integer(k, v)
	if !ok {
		return old
	}
	if n <= 0 {
		a.errorf(resolve(v), "%s must be more than 0 seconds, not %d", k.Value, n)
		return old
	}
	return n
}

func readMetadata(a *appState, k, v *yaml.Node) {
	m, ok := a.mapping(k, v)
	if !ok {
		return
	}
	for _, p := range a.pairs(m) {
		switch p.key.Value {
		case "labels":
			a.app.Labels = a.stringMap(p.key, p.val)
			checkMetadataKeys(a, p.val, a.app.Labels, true)
		case "annotations":
			a.app.Annotations = a.stringMap(p.key, p.val)
			checkMetadataKeys(a, p.val, a.app.Annotations, false)
		default:
			a.errorf(p.key, "unknown metadata attribute %q (labels, annotations)", p.key.Value)
		}
	}
}

// metaKeyRE is a Cloud Foundry metadata key: optional DNS prefix and a
// name of at most 63 characters.
var metaKeyRE = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)

// labelValueRE is a Cloud Foundry label value.
var labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)

func checkMetadataKeys(a *appState, n *yaml.Node, m map[string]string, label bool) {
	for _, key := range sortedStrings(m) {
		if !metaKeyRE.MatchString(key) {
			a.errorf(resolve(n), "metadata key %q is not valid (prefix/name, name at most 63 letters, digits, - _ .)", key)
		}
		if label && !labelValueRE.MatchString(m[key]) {
			a.errorf(resolve(n), "label %s: value %q is not valid (at most 63 letters, digits, - _ .)", key, m[key])
		}
		if !label && len(m[key]) > maxAnnotationBytes {
			a.errorf(resolve(n), "%s", tooLong("annotation "+key, len(m[key]), maxAnnotationBytes))
		}
	}
}

func sortedStrings(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
