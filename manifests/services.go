package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/drains"
	"github.com/driftless/driftless/model"
)

// ServicesManifest is one parsed services.yml: the service instances of
// the space of the tree it is in.
type ServicesManifest struct {
	File        string
	Services    []model.ServiceDecl
	Diagnostics Diagnostics
}

// serviceKeys and userProvidedKeys are the attributes of a services.yml
// entry under services: and user-provided:.
var (
	serviceKeys      = []string{"broker", "name", "parameters", "plan", "preview-plan", "rotate-every", "rotation", "service", "tags"}
	userProvidedKeys = []string{"credentials", "name", "syslog_drain_url", "tags"}
)

// ParseServices reads one services.yml. vars fill its ((variables)), as
// in manifests. It never returns nil: problems are in its Diagnostics.
func ParseServices(file string, data []byte, vars map[string]any) *ServicesManifest {
	sm := &ServicesManifest{File: file}
	r := &reporter{file: file}
	defer func() { sm.Diagnostics = append(sm.Diagnostics, r.diags...); sortDiags(sm.Diagnostics) }()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			r.diags = append(r.diags, yamlError(file, err))
		}
		return sm // an empty file declares nothing
	}
	r.substitute(&doc, vars, 0)
	if len(doc.Content) == 0 {
		return sm
	}
	root, ok := r.mapping(nil, doc.Content[0])
	if !ok {
		return sm
	}
	seen := map[string]model.Position{}
	add := func(s model.ServiceDecl, ok bool) {
		if !ok {
			return
		}
		if first, dup := seen[s.Name]; dup {
			r.errorf(nodeAt(s.Pos), "service %q is already declared at %s", s.Name, first)
			return
		}
		seen[s.Name] = s.Pos
		sm.Services = append(sm.Services, s)
	}
	for _, p := range r.pairs(root) {
		switch p.key.Value {
		case "services", "user-provided":
			list := resolve(p.val)
			if list.Kind != yaml.SequenceNode {
				r.errorf(list, "%s must be a list, not a %s", p.key.Value, kindName(list))
				continue
			}
			for _, item := range list.Content {
				if p.key.Value == "services" {
					add(r.parseService(item))
				} else {
					add(r.parseUserProvided(item))
				}
			}
		default:
			r.errorf(p.key, "unknown top-level attribute %q of %s (services, user-provided)%s", p.key.Value, model.ServicesFile,
				suggest(p.key.Value, []string{"services", "user-provided"}))
		}
	}
	return sm
}

// parseService reads one entry of services:.
func (r *reporter) parseService(n *yaml.Node) (model.ServiceDecl, bool) {
	s, m, ok := r.serviceEntry(n, serviceKeys)
	if !ok {
		return s, false
	}
	for _, p := range r.pairs(m) {
		switch p.key.Value {
		case "broker":
			s.Broker, _ = r.str(p.key, p.val, false)
		case "service":
			s.Service, _ = r.str(p.key, p.val, false)
		case "plan":
			s.Plan, _ = r.str(p.key, p.val, false)
		case "preview-plan":
			s.PreviewPlan, _ = r.str(p.key, p.val, false)
		case "parameters":
			s.Parameters = r.anyMap(p.key, p.val)
		case "tags":
			s.Tags, _ = r.strList(p.key, p.val)
		case "rotate-every":
			if v, ok := r.str(p.key, p.val, true); ok {
				d, err := model.ParseDuration(v)
				if err != nil {
					r.errorf(resolve(p.val), "rotate-every: %v", err)
				}
				s.RotateEvery = d
			}
		case "rotation":
			if v, ok := r.integer(p.key, p.val); ok {
				if v < 0 {
					r.errorf(resolve(p.val), "rotation must be 0 or more, not %d", v)
				}
				s.Rotation = v
			}
		}
	}
	switch {
	case s.Service == "":
		r.errorf(n, "service %q needs service: the broker's offering (e.g. postgresql)", s.Name)
		return s, false
	case s.Plan == "":
		r.errorf(n, "service %q needs plan: one of the offering's plans", s.Name)
		return s, false
	}
	return s, true
}

// parseUserProvided reads one entry of user-provided:.
func (r *reporter) parseUserProvided(n *yaml.Node) (model.ServiceDecl, bool) {
	s, m, ok := r.serviceEntry(n, userProvidedKeys)
	if !ok {
		return s, false
	}
	s.UserProvided = true
	for _, p := range r.pairs(m) {
		switch p.key.Value {
		case "credentials":
			v := resolve(p.val)
			if v.Kind == yaml.MappingNode {
				r.errorf(v, "credentials of %q must be encrypted: `driftless secrets encrypt` prints what to commit (plain credentials never go into git)", s.Name)
				continue
			}
			c, ok := r.str(p.key, p.val, false)
			if ok && !strings.HasPrefix(strings.TrimSpace(c), "-----BEGIN AGE ENCRYPTED FILE-----") {
				r.errorf(v, "credentials of %q are not an age ciphertext (-----BEGIN AGE ENCRYPTED FILE-----): encrypt them with `driftless secrets encrypt`", s.Name)
				continue
			}
			s.Credentials = c
		case "syslog_drain_url":
			if v, ok := r.str(p.key, p.val, false); ok {
				if _, err := drains.ParseURL(v); err != nil {
					// Never quoted: a drain URL may hold credentials.
					r.errorf(resolve(p.val), "syslog_drain_url of %q: %v", s.Name, err)
					continue
				}
				s.SyslogDrainURL = v
			}
		case "tags":
			s.Tags, _ = r.strList(p.key, p.val)
		}
	}
	return s, true
}

// serviceEntry checks an entry is a mapping of known keys with a valid
// name, and returns the name.
func (r *reporter) serviceEntry(n *yaml.Node, keys []string) (model.ServiceDecl, *yaml.Node, bool) {
	n = resolve(n)
	s := model.ServiceDecl{Pos: r.pos(n)}
	m, ok := r.mapping(&yaml.Node{Value: "a service entry"}, n)
	if !ok {
		return s, nil, false
	}
	var nameNode *yaml.Node
	for _, p := range r.pairs(m) {
		if p.key.Value == "name" {
			nameNode = p.val
			continue
		}
		known := false
		for _, k := range keys {
			known = known || k == p.key.Value
		}
		if !known {
			r.errorf(p.key, "unknown service attribute %q (%s)%s", p.key.Value, strings.Join(keys, ", "), suggest(p.key.Value, keys))
		}
	}
	if nameNode == nil {
		r.errorf(n, "a service entry needs a name")
		return s, nil, false
	}
	name, ok := r.str(&yaml.Node{Value: "name"}, nameNode, false)
	if !ok {
		return s, nil, false
	}
	if !appNameRE.MatchString(name) {
		r.errorf(resolve(nameNode), "service name %q is not valid: use letters, digits, - and _ (at most 63, starting with a letter or digit)", name)
		return s, nil, false
	}
	s.Name = name
	return s, m, true
}

// anyMap reads a mapping of any YAML values (a broker's parameters), as
// JSON would hold them.
func (r *reporter) anyMap(key, v *yaml.Node) map[string]any {
	m, ok := r.mapping(key, v)
	if !ok {
		return nil
	}
	var out map[string]any
	if err := m.Decode(&out); err != nil {
		r.errorf(m, "%s: %v", key.Value, err)
		return nil
	}
	if err := jsonable(out); err != nil {
		r.errorf(m, "%s: %v", key.Value, err)
		return nil
	}
	return out
}

// jsonable checks that v (decoded YAML) has only string keys, as JSON
// needs.
func jsonable(v any) error {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if err := jsonable(x); err != nil {
				return fmt.Errorf("%s.%w", k, err)
			}
		}
	case map[any]any:
		return errors.New("a key is not a string")
	case []any:
		for _, x := range t {
			if err := jsonable(x); err != nil {
				return err
			}
		}
	}
	return nil
}
