package manifests

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// A diagnostic is an error or warning about a manifest, located at its
// file:line:col: a model.Problem.

// Diagnostics is a list of diagnostics.
type Diagnostics []model.Problem

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool { return len(ds.Errors()) > 0 }

// Errors returns the errors.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(model.Error) }

// Warnings returns the warnings.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(model.Warning) }

func (ds Diagnostics) filter(s model.Severity) Diagnostics {
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

func (r *reporter) pos(n *yaml.Node) model.Position {
	if n == nil {
		return model.Position{File: r.file}
	}
	return model.Position{File: r.file, Line: n.Line, Col: n.Column}
}

func (r *reporter) errorf(n *yaml.Node, format string, args ...any) {
	r.diags = append(r.diags, model.Problem{Position: r.pos(n), Severity: model.Error, Message: clip(fmt.Sprintf(format, args...))})
}

func (r *reporter) warnf(n *yaml.Node, format string, args ...any) {
	r.diags = append(r.diags, model.Problem{Position: r.pos(n), Severity: model.Warning, Message: clip(fmt.Sprintf(format, args...))})
}
