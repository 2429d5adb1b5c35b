package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/driftless/driftless/manifests"
	"github.com/driftless/driftless/model"
)

func newValidateCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate PATH",
		Short: "Check every manifest.yml under PATH (or one manifest file); exits 1 on errors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := args[0]
			st, err := os.Stat(root)
			if err != nil {
				return fmt.Errorf("validate: %w", err)
			}
			var diags manifests.Diagnostics
			apps := 0
			if st.IsDir() {
				set := manifests.LoadFS(os.DirFS(root), ".")
				diags, apps = set.Diagnostics, len(set.Apps())
			} else {
				m := parseOne(root)
				diags, apps = m.Diagnostics, len(m.Apps)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				type item struct {
					File     string `json:"file"`
					Line     int    `json:"line"`
					Column   int    `json:"column"`
					Severity string `json:"severity"`
					Message  string `json:"message"`
				}
				items := []item{}
				for _, d := range diags {
					sev := "warning"
					if d.Severity == model.Error {
						sev = "error"
					}
					items = append(items, item{File: filepath.Join(displayRoot(root, st.IsDir()), d.File), Line: d.Line, Column: d.Col, Severity: sev, Message: d.Message})
				}
				if err := printJSON(out, map[string]any{"apps": apps, "diagnostics": items}); err != nil {
					return err
				}
			} else {
				for _, d := range diags {
					d.File = filepath.Join(displayRoot(root, st.IsDir()), d.File)
					fmt.Fprintln(out, d.Diagnostic())
				}
				if !diags.HasErrors() {
					fmt.Fprintf(out, "%d app(s), %d warning(s): ok\n", apps, len(diags.Warnings()))
				}
			}
			if diags.HasErrors() {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// parseOne parses a single manifest file with vars.yml beside it.
func parseOne(path string) *manifests.Manifest {
	name := filepath.Base(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return &manifests.Manifest{File: name, Diagnostics: manifests.Diagnostics{{
			Position: model.Position{File: name}, Severity: model.Error, Message: err.Error()}}}
	}
	var vars map[string]any
	var diags manifests.Diagnostics
	varsPath := filepath.Join(filepath.Dir(path), "vars.yml")
	if vdata, err := os.ReadFile(varsPath); err == nil {
		vars, diags = manifests.ParseVars("vars.yml", vdata)
	}
	m := manifests.Parse(name, data, vars)
	m.Diagnostics = append(diags, m.Diagnostics...)
	return m
}

// displayRoot is the folder diagnostics paths are relative to.
func displayRoot(root string, isDir bool) string {
	if isDir {
		return root
	}
	return filepath.Dir(root)
}
