package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newPreviewsCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "previews",
		Short: "List pull-request previews: source, number, branch, head commit, URL, state and why",
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
			fmt.Fprintln(tw, "SOURCE\tPR\tBRANCH\tHEAD\tSTATE\tAGE\tURL")
			for _, p := range ps {
				age := "-"
				if !p.Since.IsZero() {
					age = time.Since(p.Since).Round(time.Second).String()
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Source, p.Number, p.Branch, shortID(p.Head), p.State, age, strings.Join(p.URLs, ", "))
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
