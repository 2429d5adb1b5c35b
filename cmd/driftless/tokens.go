package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftless/driftless/api"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make, list and revoke API tokens (who may do what is the policies' driftless.authz)",
	}
	cmd.AddCommand(newTokenCreateCmd(), newTokenListCmd(), newTokenRevokeCmd())
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var f clientFlags
	var req api.TokenRequest
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make a token and print it (the only time it is shown)",
		Long: "Make a token and print it, the only time it is shown: the platform keeps its hash only.\n" +
			"Built-in roles: admin; space-developer (read, sync, logs and env of its spaces); space-auditor\n" +
			"(read, without env, credentials or logs); ci (sync and read of its spaces); cell (a cell's credential).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Spaces, _ = cmd.Flags().GetStringArray("space")
			res, err := f.client().CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, res)
			}
			fmt.Fprintln(out, res.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s (role %s%s) expires %s; it is not shown again.\n",
				res.Info.Name, res.Info.Role, spacesNote(res.Info.Spaces), res.Info.ExpiresAt.Local().Format(time.RFC3339))
			return nil
		},
	}
	f.registerAPI(cmd, true)
	cmd.Flags().StringVar(&req.Name, "name", "", "the token's name (unique)")
	cmd.Flags().StringVar(&req.Role, "role", "", "its role: admin, space-developer, space-auditor, ci, cell, or one of your policies'")
	cmd.Flags().StringArray("space", nil, "a space it may act in (repeatable; '*' for every space)")
	cmd.Flags().StringVar(&req.Expires, "expires", "", "its lifetime, e.g. 24h (default 90 days)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func spacesNote(spaces []string) string {
	if len(spaces) == 0 {
		return ""
	}
	return ", spaces " + strings.Join(spaces, ",")
}

func newTokenListCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens: names, roles, spaces, expiry and last use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := f.client().Tokens(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, ts)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tSPACES\tEXPIRES\tLAST USED")
			for _, t := range ts {
				expires := t.ExpiresAt.Local().Format("2006-01-02 15:04")
				if t.Expired {
					expires += " (expired)"
				}
				used := "never"
				if !t.LastUsed.IsZero() {
					used = t.LastUsed.Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, spacesCell(t.Spaces), expires, used)
			}
			return tw.Flush()
		},
	}
	f.registerAPI(cmd, true)
	return cmd
}

// spacesCell is a token's spaces in a table cell ("-" for none).
func spacesCell(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func newTokenRevokeCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: every controller refuses it from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := f.client().RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s (role %s)\n", t.Name, t.Role)
			return nil
		},
	}
	f.registerAPI(cmd, true)
	return cmd
}

func newCanCmd() *cobra.Command {
	var f clientFlags
	var tokenName string
	cmd := &cobra.Command{
		Use:   "can VERB RESOURCE",
		Short: "Explain whether a token may do VERB on RESOURCE (in --space), as the policies decide",
		Long: "Explain whether a token (this one, or --token-name's) may do VERB on RESOURCE in --space.\n" +
			"Verbs: read, sync, manage, pull, push. Resources: apps, env, logs, events, previews, services,\n" +
			"sources, status, brokers, public-key, tokens, blobs. Exits 1 when refused.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := f.client().Can(cmd.Context(), args[0], args[1], f.space, tokenName)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				if err := printJSON(out, res); err != nil {
					return err
				}
			} else {
				where := "the platform"
				if res.Space != "" {
					where = "space " + res.Space
				}
				if res.Allow {
					fmt.Fprintf(out, "yes: token %s (role %s) may %s %s in %s\n", res.Token, res.Role, res.Verb, res.Resource, where)
				} else {
					fmt.Fprintf(out, "no: token %s (role %s) may not %s %s in %s: %s\n", res.Token, res.Role, res.Verb, res.Resource, where, res.Reason)
				}
			}
			if !res.Allow {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&tokenName, "token-name", "", "ask about the token of this name (needs a token that may read tokens)")
	return cmd
}

func newEnvCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "env APP",
		Short: "Show an app's environment as its manifest declares it (service credentials are never shown)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := f.client().Env(cmd.Context(), f.space, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, env)
			}
			for _, k := range slices.Sorted(maps.Keys(env.Env)) {
				fmt.Fprintf(out, "%s=%s\n", k, env.Env[k])
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}
