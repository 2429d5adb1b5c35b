package manifests

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// varRE matches a ((name)) placeholder.
var varRE = regexp.MustCompile(`\(\(\s*([A-Za-z0-9_.\-]+)\s*\)\)`)

// ParseVars reads a vars file (a YAML mapping, like vars.yml beside a
// manifest) into the values of its ((variables)).
func ParseVars(file string, data []byte) (map[string]any, Diagnostics) {
	r := &reporter{file: file}
	var vars map[string]any
	if err := yaml.Unmarshal(data, &vars); err != nil {
		r.diags = append(r.diags, yamlError(file, err))
		return nil, r.diags
	}
	return vars, r.diags
}

// lookupVar finds a variable: an exact key, or a dotted path into maps.
func lookupVar(vars map[string]any, name string) (any, bool) {
	if v, ok := vars[name]; ok {
		return v, true
	}
	var cur any = vars
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// substitute fills every ((name)) in the scalars under n. A scalar that is
// only a placeholder takes the variable's value with its type (a number
// stays a number, a list a list); a placeholder inside text is replaced
// by the value's text. An unfilled variable is an error naming it.
func (r *reporter) substitute(n *yaml.Node, vars map[string]any, depth int) {
	if n == nil || depth > 64 {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode, yaml.MappingNode:
		for _, c := range n.Content {
			r.substitute(c, vars, depth+1)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "((") {
			return
		}
		if m := varRE.FindStringSubmatch(n.Value); m != nil && m[0] == strings.TrimSpace(n.Value) {
			v, ok := lookupVar(vars, m[1])
			if !ok {
				r.errorf(n, "variable ((%s)) has no value (define it in vars.yml beside the manifest)", m[1])
				r.markUnfilled(n)
				return
			}
			var repl yaml.Node
			if err := repl.Encode(v); err != nil {
				r.errorf(n, "variable ((%s)): %v", m[1], err)
				return
			}
			line, col := n.Line, n.Column
			*n = repl
			setPos(n, line, col)
			return
		}
		n.Value = varRE.ReplaceAllStringFunc(n.Value, func(ph string) string {
			name := varRE.FindStringSubmatch(ph)[1]
			v, ok := lookupVar(vars, name)
			if !ok {
				r.errorf(n, "variable ((%s)) has no value (define it in vars.yml beside the manifest)", name)
				r.markUnfilled(n)
				return ph
			}
			switch v.(type) {
			case map[string]any, []any:
				r.errorf(n, "variable ((%s)) is a %T and cannot be part of a string", name, v)
				return ph
			}
			return fmt.Sprint(v)
		})
		n.Tag, n.Style = "!!str", 0
	}
}

// setPos gives a substituted value (and what it holds) the placeholder's
// position, so diagnostics point at the manifest.
func setPos(n *yaml.Node, line, col int) {
	n.Line, n.Column = line, col
	for _, c := range n.Content {
		setPos(c, line, col)
	}
}

func (r *reporter) markUnfilled(n *yaml.Node) {
	if r.unfilled == nil {
		r.unfilled = map[*yaml.Node]bool{}
	}
	r.unfilled[n] = true
}
