package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftless/driftless/model"
)

func newPreviewsCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "previews",
		Short: "List pull-request previews: source, number, branch, head commit, state and why, age, expiry, URL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := f.client().Previews(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, ps)
			}
			if len(ps) == 0 {
				fmt.Fprintln(out, "No previews. A pull request's webhook deploys one (docs/previews.md).")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tPR\tBRANCH\tHEAD\tSTATE\tAGE\tEXPIRES\tURL")
			for _, p := range ps {
				age, expires := "-", "-"
				if !p.Since.IsZero() {
					age = time.Since(p.Since).Round(time.Second).String()
				}
				if !p.Expires.IsZero() {
					expires = "in " + time.Until(p.Expires).Round(time.Minute).String()
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Source, p.Number, p.Branch, shortID(p.Head), p.State, age, expires, strings.Join(p.URLs, ", "))
			}
			tw.Flush()
			for _, p := range ps {
				if p.Reason != "" {
					fmt.Fprintf(out, "%s: %s\n", p.Name, p.Reason)
				}
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

// previewFlag adds --preview N: the app of pull request N's preview.
func (f *clientFlags) previewFlag(cmd *cobra.Command) {
	cmd.Flags().IntVar(&f.preview, "preview", 0, "the app of the preview of pull request N (its space: <space>-pr-N)")
}

// previewSpace is the space the command looks in: --space, or with
// --preview N the space of pull request N's preview (of --space's source
// when several sources have a pull request N).
func (f *clientFlags) previewSpace(ctx context.Context) (string, error) {
	if f.preview == 0 {
		return f.space, nil
	}
	if f.preview < 0 {
		return "", fmt.Errorf("--preview %d: a pull request number is positive", f.preview)
	}
	ps, err := f.client().Previews(ctx)
	if err != nil {
		return "", err
	}
	var spaces []string
	for _, p := range ps {
		if p.Number == f.preview && (f.space == "" || p.Space == model.PreviewSpace(f.space, f.preview)) {
			spaces = append(spaces, p.Space)
		}
	}
	switch len(spaces) {
	case 0:
		return "", fmt.Errorf("no preview of pull request %d is deployed (`driftless previews` lists them)", f.preview)
	case 1:
		return spaces[0], nil
	}
	return "", fmt.Errorf("pull request %d has previews in spaces %s: say which with --space", f.preview, strings.Join(spaces, ", "))
}
