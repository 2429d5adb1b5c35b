package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/driftless/driftless/platform"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/decide"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Test policies, and check manifests against them before pushing"}
	cmd.AddCommand(newPolicyTestCmd(), newPolicyEvalCmd())
	return cmd
}

func newPolicyTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test DIR",
		Short: "Run the Rego unit tests (*_test.rego) of a policy folder, with coverage; exits 1 on a failure",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			results, coverage, err := policies.RunTests(cmd.Context(), os.DirFS(args[0]))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			failed := 0
			for _, r := range results {
				status := "PASS"
				if !r.Pass {
					status, failed = "FAIL", failed+1
				}
				fmt.Fprintf(out, "%s: %s (%s:%d)", status, r.Name, r.File, r.Line)
				if r.Error != "" {
					fmt.Fprintf(out, ": %s", r.Error)
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "%d test(s), %d failed, coverage %.1f%%\n", len(results), failed, coverage)
			if failed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
}

func newPolicyEvalCmd() *cobra.Command {
	var space, org, policyDir, domain string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "eval DIR",
		Short: "Decide on the manifests under DIR as the platform would for --space; exits 1 when denied",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			set, err := loadPolicies(ctx, policyDir)
			if err != nil {
				return err
			}
			// Decided as the controller decides a commit (reconciler/decide).
			prop := decide.Desired(decide.LocalTree{Files: os.DirFS(args[0])}, decide.Options{Space: space, Domain: domain})
			if len(prop.Errors) > 0 {
				d := prop.Errors[0]
				return fmt.Errorf("%s: %s (fix the manifests first: driftless validate)", d.Position, d.Message)
			}
			in := decide.PolicyInput(decide.Scope{Space: space, Org: org}, prop, decide.State{})
			vs, err := set.Evaluate(ctx, in)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if vs == nil {
					vs = []policies.Violation{}
				}
				if err := printJSON(out, vs); err != nil {
					return err
				}
			} else {
				for _, v := range vs {
					loc := ""
					if v.File != "" {
						loc = fmt.Sprintf("%s:%d: ", v.File, v.Line)
					}
					fmt.Fprintf(out, "%spolicy %s: %s\n", loc, v.Policy, v.Message)
				}
				if len(vs) == 0 {
					fmt.Fprintf(out, "%d app(s) in space %s: allowed\n", len(in.Apps), space)
				}
			}
			if len(vs) > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&space, "space", "dev", "space the apps would deploy to")
	f.StringVar(&org, "org", "", "organisation of the space")
	f.StringVar(&policyDir, "policies", "", "policy folder (default: the built-in bundle)")
	f.StringVar(&domain, "domain", platform.DefaultDomain, "default domain of app routes")
	f.BoolVar(&asJSON, "json", false, "print the violations as JSON")
	return cmd
}

func loadPolicies(ctx context.Context, dir string) (*policies.Set, error) {
	if dir == "" {
		return policies.Default(ctx)
	}
	return policies.Load(ctx, os.DirFS(dir))
}
