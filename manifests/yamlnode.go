package manifests

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// pair is one key and value of a mapping.
type pair struct {
	key, val *yaml.Node
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// pairs returns a mapping's entries with `<<` merge keys expanded (keys
// written in the mapping win over merged ones). Duplicate keys are errors.
func (r *reporter) pairs(m *yaml.Node) []pair {
	if r.active[m] {
		r.errorf(m, "this mapping merges itself (<< through an alias of itself)")
		return nil
	}
	if r.active == nil {
		r.active = map[*yaml.Node]bool{}
	}
	r.active[m] = true
	defer delete(r.active, m)
	var own, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, r.mergeSources(resolve(v))...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			r.errorf(k, "a key must be a plain word, not a %s", kindName(k))
			continue
		}
		if first, ok := seen[k.Value]; ok {
			r.errorf(k, "%q is given twice (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k, v})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key
			own = append(own, p)
		}
	}
	return own
}

// mergeSources reads the value of a `<<` key: a mapping or a list of them.
func (r *reporter) mergeSources(v *yaml.Node) []pair {
	switch v.Kind {
	case yaml.MappingNode:
		return r.pairs(v)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			if it := resolve(item); it.Kind == yaml.MappingNode {
				out = append(out, r.pairs(it)...)
			} else {
				r.errorf(it, "<< merges mappings, not a %s", kindName(it))
			}
		}
		return out
	default:
		r.errorf(v, "<< merges mappings, not a %s", kindName(v))
		return nil
	}
}

// kindName names a node's type for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			return "number"
		case "!!float":
			return "number"
		case "!!bool":
			return "boolean"
		case "!!null":
			return "null"
		}
		return "string"
	}
	return "value"
}

// str reads a string scalar. Numbers and booleans are taken as written
// when lenient (env values, labels); otherwise they are a type error.
func (r *reporter) str(key, v *yaml.Node, lenient bool) (string, bool) {
	v = resolve(v)
	if r.unfilled[v] {
		return *new(string), false
	}
	if v.Kind != yaml.ScalarNode || (v.Tag == "!!null" && !lenient) {
		r.errorf(v, "%s must be a string, not a %s", key.Value, kindName(v))
		return "", false
	}
	if v.Tag == "!!null" {
		return "", true
	}
	if !lenient && v.Tag != "!!str" {
		r.errorf(v, "%s must be a string, not a %s (quote it)", key.Value, kindName(v))
		return "", false
	}
	if !lenient && len(v.Value) > maxStringBytes {
		r.errorf(v, "%s", tooLong(key.Value, len(v.Value), maxStringBytes))
		return "", false
	}
	return v.Value, true
}

// integer reads an integer scalar.
func (r *reporter) integer(key, v *yaml.Node) (int, bool) {
	v = resolve(v)
	if r.unfilled[v] {
		return *new(int), false
	}
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" {
		r.errorf(v, "%s must be a whole number, not a %s", key.Value, kindName(v))
		return 0, false
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(v.Value, "_", ""), 0, 32)
	if err != nil {
		r.errorf(v, "%s: %q is not a usable number", key.Value, v.Value)
		return 0, false
	}
	return int(n), true
}

// boolean reads a boolean scalar.
func (r *reporter) boolean(key, v *yaml.Node) (bool, bool) {
	v = resolve(v)
	if r.unfilled[v] {
		return *new(bool), false
	}
	if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
		r.errorf(v, "%s must be true or false, not a %s", key.Value, kindName(v))
		return false, false
	}
	var b bool
	if err := v.Decode(&b); err != nil {
		r.errorf(v, "%s: %v", key.Value, err)
		return false, false
	}
	return b, true
}

// size reads a size ("256M", "1G") in megabytes.
func (r *reporter) size(key, v *yaml.Node) (int, bool) {
	v = resolve(v)
	if r.unfilled[v] {
		return *new(int), false
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Tag == "!!bool" {
		r.errorf(v, "%s must be a size like 256M or 1G, not a %s", key.Value, kindName(v))
		return 0, false
	}
	mb, err := ParseSize(v.Value)
	if err != nil {
		r.errorf(v, "%s: %v", key.Value, err)
		return 0, false
	}
	return mb, true
}

// logRate reads a log rate limit (ParseLogRate) in bytes per second; 0
// is no limit (-1 in the manifest).
func (r *reporter) logRate(key, v *yaml.Node) (int64, bool) {
	v = resolve(v)
	if r.unfilled[v] {
		return 0, false
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Tag == "!!bool" {
		r.errorf(v, "%s must be a rate like 16K or 1M (bytes per second), or -1 for no limit, not a %s", key.Value, kindName(v))
		return 0, false
	}
	b, err := ParseLogRate(v.Value)
	if err != nil {
		r.errorf(v, "%s: %v", key.Value, err)
		return 0, false
	}
	return max(b, 0), true
}

// strings reads a list of strings.
func (r *reporter) strList(key, v *yaml.Node) ([]string, bool) {
	v = resolve(v)
	if v.Kind != yaml.SequenceNode {
		r.errorf(v, "%s must be a list, not a %s", key.Value, kindName(v))
		return nil, false
	}
	var out []string
	ok := true
	for _, item := range v.Content {
		s, good := r.str(key, item, false)
		if good && s == "" {
			r.errorf(resolve(item), "%s: empty entry", key.Value)
			good = false
		}
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

// mapping checks that v is a mapping.
func (r *reporter) mapping(key, v *yaml.Node) (*yaml.Node, bool) {
	v = resolve(v)
	if v.Kind != yaml.MappingNode {
		name := "the manifest"
		if key != nil {
			name = key.Value
		}
		r.errorf(v, "%s must be a mapping, not a %s", name, kindName(v))
		return nil, false
	}
	return v, true
}

// stringMap reads a mapping of strings (env, labels, annotations).
func (r *reporter) stringMap(key, v *yaml.Node) map[string]string {
	m, ok := r.mapping(key, v)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, p := range r.pairs(m) {
		val := resolve(p.val)
		if val.Kind != yaml.ScalarNode {
			r.errorf(val, "%s.%s must be a string, not a %s", key.Value, p.key.Value, kindName(val))
			continue
		}
		s, _ := r.str(p.key, val, true)
		out[p.key.Value] = s
	}
	return out
}

// suggest returns ` (did you mean "x"?)` for the closest known word.
func suggest(word string, known []string) string {
	if len(word) > 64 {
		return "" // no known word is near, and distance is quadratic
	}
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(word, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance of two short words.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
