package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newServicesCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "services",
		Short: "List service instances: service, plan, broker, state, last operation, bound apps (never credentials)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, err := f.client().Services(cmd.Context(), f.space)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, ss)
			}
			if len(ss) == 0 {
				fmt.Fprintln(out, "No service instances. A services.yml beside the manifests declares them (docs/services.md).")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SPACE\tNAME\tSERVICE\tPLAN\tBROKER\tSTATE\tBOUND APPS")
			for _, s := range ss {
				service, plan, broker := s.Service, s.Plan, s.Broker
				if s.UserProvided {
					service, plan, broker = "user-provided", "-", "-"
				}
				state := string(s.State)
				if s.Deleted {
					state += " (removed from git)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Space, s.Name, service, plan, orDash(broker), state, orDash(strings.Join(s.Bound, ", ")))
			}
			tw.Flush()
			for _, s := range ss {
				if s.Message != "" {
					fmt.Fprintf(out, "%s/%s (%s:%d): %s\n", s.Space, s.Name, s.File, s.Line, s.Message)
				}
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newBrokersCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "brokers",
		Short: "List the registered service brokers (--broker) and what they offer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs, err := f.client().Brokers(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, bs)
			}
			if len(bs) == 0 {
				fmt.Fprintln(out, "No service brokers. Register one with --broker NAME=URL on the controller (docs/services.md).")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BROKER\tURL\tSERVICE\tPLANS")
			for _, b := range bs {
				if b.Error != "" {
					fmt.Fprintf(tw, "%s\t%s\t-\tcatalog unreadable: %s\n", b.Name, orDash(b.URL), b.Error)
					continue
				}
				for i, o := range b.Offerings {
					name, url := b.Name, orDash(b.URL)
					if i > 0 {
						name, url = "", ""
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, url, o.Name, strings.Join(o.Plans, ", "))
				}
				if len(b.Offerings) == 0 {
					fmt.Fprintf(tw, "%s\t%s\t-\t(offers nothing)\n", b.Name, orDash(b.URL))
				}
			}
			return tw.Flush()
		},
	}
	f.register(cmd, true)
	return cmd
}

// orDash is s, or "-" when empty (table cells).
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
