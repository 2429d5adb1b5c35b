// Command driftless is the git-driven PaaS: platform roles (dev,
// controller, agent, router) and user commands (apps, app, status, sync,
// events, logs, validate).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries an exit status without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "driftless:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "driftless",
		Short:         "A git-driven PaaS: commit a Cloud Foundry manifest, get a running app",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().String("log-level", "info", "log level of platform roles: debug, info, warn, error")
	root.AddCommand(
		newDevCmd(), newControllerCmd(), newAgentCmd(), newRouterCmd(), newBrokerCmd(),
		newAppsCmd(), newAppCmd(), newStatusCmd(), newSyncCmd(), newEventsCmd(), newLogsCmd(), newPreviewsCmd(), newServicesCmd(), newBrokersCmd(), newSecretsCmd(),
		newValidateCmd(), newPolicyCmd(), newTokenCmd(), newCanCmd(), newEnvCmd(), newSimCmd(), newNATSConfigCmd(),
	)
	return root
}

// logger builds the structured logger of a platform role.
func logger(cmd *cobra.Command) *slog.Logger {
	lvl := slog.LevelInfo
	s, _ := cmd.Flags().GetString("log-level")
	_ = lvl.UnmarshalText([]byte(s))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}
