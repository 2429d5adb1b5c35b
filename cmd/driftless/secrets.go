package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/secrets"
)

func newSecretsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Encrypt credentials for git (user-provided services in services.yml)",
	}
	var f clientFlags
	enc := &cobra.Command{
		Use:   "encrypt [FILE]",
		Short: "Encrypt a YAML or JSON mapping of credentials (FILE, or standard input) to the platform's public key; print what to commit",
		Long: "Reads a mapping of credentials (YAML or JSON) and prints it encrypted with age to the platform's public key\n" +
			"(GET /v1/secrets/public-key), ready to paste as a user-provided service's credentials: in services.yml.\n" +
			"Only the platform's controllers can decrypt it; nothing is sent to the platform but the request for its key.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				file, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer file.Close()
				in = file
			}
			data, err := io.ReadAll(io.LimitReader(in, 1<<20))
			if err != nil {
				return fmt.Errorf("reading the credentials: %w", err)
			}
			var creds map[string]any
			if err := yaml.Unmarshal(data, &creds); err != nil || len(creds) == 0 {
				return fmt.Errorf("the credentials must be a non-empty YAML or JSON mapping (key: value)")
			}
			plain, err := json.Marshal(creds)
			if err != nil {
				return fmt.Errorf("the credentials must be a mapping of strings to values: %w", err)
			}
			recipient, err := f.client().PublicKey(cmd.Context())
			if err != nil {
				return fmt.Errorf("fetching the platform's public key: %w", err)
			}
			ct, err := secrets.Encrypt(recipient, plain)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "credentials: |")
			for _, line := range strings.Split(strings.TrimRight(ct, "\n"), "\n") {
				fmt.Fprintln(out, "  "+line)
			}
			return nil
		},
	}
	f.register(enc, false)
	cmd.AddCommand(enc)
	return cmd
}
