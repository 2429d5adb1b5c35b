package main

import (
	"cmp"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/driftless/driftless/platform"
)

func newBrokerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a built-in service broker (Open Service Broker API)",
	}
	pg := &cobra.Command{
		Use:   "postgres",
		Short: "Run the PostgreSQL service broker: a database per instance, a role per binding",
		Args:  cobra.NoArgs,
	}
	cfg := postgresBrokerFlags(pg.Flags())
	pg.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg.Log = logger(cmd)
		cfg.DSN = cmp.Or(cfg.DSN, os.Getenv("DRIFTLESS_POSTGRES_DSN"))
		cfg.Password = cmp.Or(cfg.Password, os.Getenv("DRIFTLESS_BROKER_PASSWORD"))
		return platform.RunPostgresBroker(cmd.Context(), *cfg)
	}
	cmd.AddCommand(pg)
	return cmd
}

// postgresBrokerFlags declares the postgres broker's flags on f and
// returns the config they fill. The DSN and the password are best given in
// the environment, not on a command line.
func postgresBrokerFlags(f *pflag.FlagSet) *platform.PostgresBrokerConfig {
	cfg := platform.DefaultPostgresBrokerConfig()
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address of the broker's OSB API")
	f.StringVar(&cfg.DSN, "dsn", "", "PostgreSQL superuser DSN (default: $DRIFTLESS_POSTGRES_DSN; never shown)")
	f.StringVar(&cfg.PublicHost, "public-host", cfg.PublicHost, "host apps reach PostgreSQL on, put in credentials (default: the DSN's)")
	f.IntVar(&cfg.PublicPort, "public-port", cfg.PublicPort, "port apps reach PostgreSQL on (default: the DSN's)")
	f.StringVar(&cfg.Username, "username", cfg.Username, "basic auth user the controller uses")
	f.StringVar(&cfg.Password, "password", "", "basic auth password (default: $DRIFTLESS_BROKER_PASSWORD; never shown)")
	return &cfg
}
