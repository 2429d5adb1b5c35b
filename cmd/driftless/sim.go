package main

import (
	"errors"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/driftless/driftless/platform"
)

// newSimCmd is `driftless sim`: simulated parts for benchmarks and scale
// tests only.
func newSimCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulated parts for benchmarks and scale tests only (never for apps)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newSimCellsCmd(), newSimUsersCmd())
	return cmd
}

func newSimCellsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cells",
		Short: "Run hollow cells: agents on the wire (heartbeats, commands, Consul registrations) with no containers; for benchmarks and scale tests only",
		Args:  cobra.NoArgs,
	}
	cfg := simCellsFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg.Log = logger(cmd)
		return platform.RunSimCells(cmd.Context(), *cfg)
	}
	return cmd
}

// simCellsFlags declares `sim cells`'s flags on f and returns the config
// they fill.
func simCellsFlags(f *pflag.FlagSet) *platform.SimCellsConfig {
	cfg := platform.DefaultSimCellsConfig()
	f.IntVar(&cfg.Count, "count", cfg.Count, "how many hollow cells to run")
	f.Var(sizeValue{&cfg.Capacity.MemoryMB}, "memory", "memory each hollow cell offers, e.g. 16G")
	f.IntVar(&cfg.Capacity.Instances, "max-instances", cfg.Capacity.Instances, "instances each hollow cell takes at most")
	f.DurationVar(&cfg.StartLatency, "start-latency", cfg.StartLatency, "how long an instance stays STARTING before it is RUNNING and registered")
	f.BoolVar(&cfg.Stage, "stage", cfg.Stage, "answer staging requests with a made-up droplet")
	f.DurationVar(&cfg.StageLatency, "stage-latency", cfg.StageLatency, "how long a staging takes (with --stage)")
	f.StringVar(&cfg.NATSURL, "nats", cfg.NATSURL, "NATS URL")
	f.StringVar(&cfg.NATSUsersFile, "nats-users", cfg.NATSUsersFile, "NATS users file (the controller's --nats-users): the i-th cell connects as its i-th user of role cell")
	f.StringVar(&cfg.NATSClient.CAFile, "nats-ca", cfg.NATSClient.CAFile, "PEM of the authorities the NATS server's certificate chains to (TLS)")
	consulFlag(f, &cfg.ConsulAddr, "")
	consulTokenFlag(f, &cfg.ConsulToken, " with the driftless-cell policy")
	f.StringVar(&cfg.Address, "address", cfg.Address, "address instances are registered at")
	f.StringVar(&cfg.Backend, "backend", cfg.Backend, "host:port every instance is registered at (one HTTP server answering for all, so that routed means served); default: made-up ports from --port-min on --address")
	f.IntVar(&cfg.PortMin, "port-min", cfg.PortMin, "first made-up port of instances (without --backend)")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "how often each cell reports")
	f.DurationVar(&cfg.RenewInterval, "renew-interval", cfg.RenewInterval, "how often each cell compares its instances with their Consul registrations (registering missing ones again)")
	return &cfg
}

func newSimUsersCmd() *cobra.Command {
	var count int
	var prefix, file string
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Write a NATS users file of hollow cells (for the controller's --nats-users and `sim cells`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("sim users: give --file")
			}
			return platform.WriteNATSUsers(file, platform.SimNATSUsers(prefix, count))
		},
	}
	cmd.Flags().IntVar(&count, "count", 1, "how many cells")
	cmd.Flags().StringVar(&prefix, "prefix", "hollow-", "cell ids are PREFIX1…PREFIXN")
	cmd.Flags().StringVar(&file, "file", "", "users file to write (mode 0600)")
	return cmd
}
