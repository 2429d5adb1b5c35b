package model

import (
	"fmt"
	"strconv"
)

// Position is a place in a file of a source: path, 1-based line and column
// (0 when unknown).
type Position struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"column,omitempty"`
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

// Severity tells errors (what they are found in is refused) from warnings.
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

// ProblemKind says who found a problem.
type ProblemKind string

// Problem kinds.
const (
	// ProblemSource is a problem of the files themselves (a manifest, a
	// policy that does not compile).
	ProblemSource ProblemKind = ""
	// ProblemPolicy is a policy's denial, or a failed policy evaluation.
	ProblemPolicy ProblemKind = "policy"
	// ProblemStore is a write of desired state that the store refused: the
	// commit is not applied until it succeeds.
	ProblemStore ProblemKind = "store"
)

// Problem is an error or warning, located in a file of a source where
// possible.
type Problem struct {
	Position
	// Severity is not stored: lists of problems are kept apart by severity.
	Severity Severity `json:"-"`
	// App names the app the problem is about, when it is about one.
	App     string      `json:"app,omitempty"`
	Message string      `json:"message"`
	Kind    ProblemKind `json:"kind,omitempty"`
}

// String formats the problem as "file:line:col: message", or the message
// alone when it has no place.
func (p Problem) String() string {
	if p.File == "" {
		return p.Message
	}
	return p.Position.String() + ": " + p.Message
}

// Diagnostic formats the problem with its severity, as compilers do:
// "file:line:col: error: message".
func (p Problem) Diagnostic() string {
	return fmt.Sprintf("%s: %s: %s", p.Position, p.Severity, p.Message)
}
