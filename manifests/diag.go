package manifests

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Position is a place in a manifest: file, 1-based line and column (0 when
// unknown).
type Position struct {
	File string
	Line int
	Col  int
}

// String formats the position as "file:line:col", leaving out what is unknown.
func (p Position) String() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
		if p.Col > 0 {
			s += ":" + strconv.Itoa(p.Col)
		}
	}
	return s
}

// Severity tells errors (the manifest is refused) from warnings.
type Severity int

// Severities.
const (
	Error Severity = iota
	Warning
)

// String is "error" or "warning".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one error or warning about a manifest.
type Diagnostic struct {
	Pos      Position
	Severity Severity
	Message  string
}

// String formats the diagnostic as "file:line:col: error: message".
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Severity, d.Message)
}

// Diagnostics is a list of diagnostics.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool { return len(ds.Errors()) > 0 }

// Errors returns the errors.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(Error) }

// Warnings returns the warnings.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(Warning) }

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// reporter collects the diagnostics of one file.
type reporter struct {
	file  string
	diags Diagnostics
	// unfilled are scalars holding a variable without value: reported
	// once, then left alone.
	unfilled map[*yaml.Node]bool
	// active are the mappings being read, to stop merge cycles.
	active map[*yaml.Node]bool
}

func (r *reporter) pos(n *yaml.Node) Position {
	if n == nil {
		return Position{File: r.file}
	}
	return Position{File: r.file, Line: n.Line, Col: n.Column}
}

func (r *reporter) errorf(n *yaml.Node, format string, args ...any) {
	r.diags = append(r.diags, Diagnostic{Pos: r.pos(n), Severity: Error, Message: fmt.Sprintf(format, args...)})
}

func (r *reporter) warnf(n *yaml.Node, format string, args ...any) {
	r.diags = append(r.diags, Diagnostic{Pos: r.pos(n), Severity: Warning, Message: fmt.Sprintf(format, args...)})
}
