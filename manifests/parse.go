package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// yamlLineRE finds the line in a yaml.v3 error message.
var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlError turns a YAML syntax error into a diagnostic at its line.
func yamlError(file string, err error) model.Problem {
	pos := model.Position{File: file}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
	}
	msg := err.Error()
	msg = yamlLineRE.ReplaceAllString(msg, "")
	msg = regexp.MustCompile(`^yaml:\s*:?\s*`).ReplaceAllString(msg, "")
	return model.Problem{Position: pos, Severity: model.Error, Message: clip("invalid YAML: " + msg)}
}

// topLevel are the manifest's own top-level attributes.
var topLevel = []string{"applications", "version"}

// Parse reads one manifest. vars fill its ((variables)). It never returns
// nil: problems are in the result's Diagnostics, every one of the file.
func Parse(file string, data []byte, vars map[string]any) *Manifest {
	m := &Manifest{File: file}
	r := &reporter{file: file}
	defer func() { m.Diagnostics = append(m.Diagnostics, r.diags...); sortDiags(m.Diagnostics) }()

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.errorf(nil, "the manifest is empty; it needs an applications: list")
		} else {
			r.diags = append(r.diags, yamlError(file, err))
		}
		return m
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		r.errorf(&extra, "a manifest holds one YAML document; this is a second one")
	} else if !errors.Is(err, io.EOF) {
		r.diags = append(r.diags, yamlError(file, err))
		return m
	}
	r.substitute(&doc, vars, 0)
	if len(doc.Content) == 0 {
		r.errorf(&doc, "the manifest is empty; it needs an applications: list")
		return m
	}
	root, ok := r.mapping(nil, doc.Content[0])
	if !ok {
		return m
	}

	var appsNode *yaml.Node
	globals := map[string]pair{}
	typo := false // a near miss of applications was reported
	for _, p := range r.pairs(root) {
		key := p.key.Value
		switch {
		case key == "applications":
			appsNode = p.val
		case key == "version":
			if v, ok := r.integer(p.key, p.val); ok && v != 1 {
				r.errorf(resolve(p.val), "version %d is not known; Cloud Foundry manifests are version 1", v)
			}
		case strings.HasPrefix(key, "x-"):
			// Extension keys hold YAML anchors for apps to merge (<<: *x).
		case isAppAttribute(key) && key != "name":
			r.warnf(p.key, "top-level %q is deprecated in Cloud Foundry: it applies to every app; put it in each app instead", key)
			globals[key] = p
		case isApplicationsTypo(key):
			r.errorf(p.key, "unknown top-level attribute %q (did you mean \"applications\"?)", key)
			typo = true
		default:
			hint := anchorHint(key, p.val)
			if hint == "" {
				hint = suggest(key, append(append([]string{}, topLevel...), appAttributeNames()...))
			}
			r.warnf(p.key, "top-level %q is not a manifest attribute and is ignored, as Cloud Foundry's CLI ignores it%s", key, hint)
		}
	}
	if appsNode == nil {
		if !typo {
			r.errorf(root, "the manifest has no applications: list")
		}
		return m
	}
	list := resolve(appsNode)
	if list.Kind != yaml.SequenceNode {
		r.errorf(list, "applications must be a list, not a %s", kindName(list))
		return m
	}
	if len(list.Content) == 0 {
		r.errorf(list, "applications is empty")
	}
	names := map[string]model.Position{}
	for _, item := range list.Content {
		app, ok := r.parseApp(resolve(item), globals)
		if !ok {
			continue
		}
		if first, dup := names[app.Name]; dup {
			r.errorf(resolve(item), "app %q is declared twice (first at line %d)", app.Name, first.Line)
			continue
		}
		names[app.Name] = app.Pos
		m.Apps = append(m.Apps, app)
	}
	return m
}

// sortDiags orders diagnostics by file, line, column and message (so
// that several at one place, e.g. from a map's keys, come in a stable
// order).
func sortDiags(ds Diagnostics) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Position, ds[j].Position
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return ds[i].Message < ds[j].Message
	})
}

// isApplicationsTypo reports whether a top-level key is a near miss of
// applications ("application", "apps", "Applications"): a manifest
// without its applications list declares nothing, so such a key stays
// an error where other unknown top-level keys are ignored.
func isApplicationsTypo(key string) bool {
	k := strings.ToLower(key)
	switch k {
	case "app", "apps", "applications":
		return true
	}
	return len(k) <= 2*len("applications") && distance(k, "applications") <= 3
}

// anchorHint is what a warning about an ignored top-level key adds when
// the key's value holds a YAML anchor: how to say that on purpose.
func anchorHint(key string, v *yaml.Node) string {
	budget := 10000 // nodes looked at: a huge value is not searched to its end
	anchor := firstAnchor(v, &budget)
	if anchor == "" {
		return ""
	}
	return fmt.Sprintf(" (it holds the anchor &%s; name it x-%s to say it is only that)", anchor, key)
}

// firstAnchor returns the first anchor defined in n or under it (aliases
// are not followed), looking at no more than *budget nodes.
func firstAnchor(n *yaml.Node, budget *int) string {
	if n == nil || *budget <= 0 {
		return ""
	}
	*budget--
	if n.Anchor != "" {
		return n.Anchor
	}
	for _, c := range n.Content {
		if a := firstAnchor(c, budget); a != "" {
			return a
		}
	}
	return ""
}
