package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/files"
	"github.com/driftless/driftless/platform"
)

// natsRoutePasswordEnv holds the cluster routes' password of nats-config
// (off the command line).
const natsRoutePasswordEnv = "DRIFTLESS_NATS_ROUTE_PASSWORD"

// newNATSConfigCmd writes one nats-server node's configuration for a
// cluster serving driftless (bus.ServerConfig): the users of a --nats-users
// file with their roles' permissions, authenticated routes, JetStream.
func newNATSConfigCmd() *cobra.Command {
	var cfg bus.ServerConfig
	var users, out string
	cmd := &cobra.Command{
		Use:   "nats-config",
		Short: "Write a nats-server cluster node's configuration: the platform's users and permissions, routes, JetStream",
		Long: "Write a nats-server cluster node's configuration (docs/operations.md, \"Production layout\"). --users is a\n" +
			"NATS users file (as the controller's --nats-users) that also lists the controllers (role controller);\n" +
			"the routes' password is read from " + natsRoutePasswordEnv + ". Run it once per node with the same\n" +
			"users, routes and password, and give every role all nodes' URLs: --nats nats://n1:4222,nats://n2:4222,…",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if users == "" || out == "" {
				return errors.New("nats-config: give --users and --out")
			}
			creds, err := platform.ReadNATSUsers(users)
			if err != nil {
				return err
			}
			cfg.Users, cfg.RoutePassword = creds, os.Getenv(natsRoutePasswordEnv)
			data, err := cfg.Render()
			if err != nil {
				return fmt.Errorf("nats-config: %w", err)
			}
			if err := files.WriteAtomic(out, data, 0o600); err != nil {
				return fmt.Errorf("nats-config: writing %s: %w", out, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&users, "users", "", "NATS users file (user, password, role, cell), controllers included")
	f.StringVar(&out, "out", "", "configuration file to write (mode 0600: it holds the routes' password)")
	f.StringVar(&cfg.Name, "name", "", "this node's server_name, unique in the cluster")
	f.StringVar(&cfg.Listen, "listen", "0.0.0.0:4222", "where clients connect")
	f.StringVar(&cfg.Monitor, "monitor", "127.0.0.1:8222", "monitoring endpoint (empty: none)")
	f.StringVar(&cfg.Cluster, "cluster", "driftless", "cluster name")
	f.StringVar(&cfg.ClusterListen, "cluster-listen", "0.0.0.0:6222", "where the other nodes' routes connect")
	f.StringSliceVar(&cfg.Routes, "route", nil, "HOST:PORT of every node's cluster listener (repeatable)")
	f.StringVar(&cfg.RouteUser, "route-user", "route", "user of the cluster routes")
	f.StringVar(&cfg.StoreDir, "store-dir", "/var/lib/nats/jetstream", "JetStream's folder")
	f.Int64Var(&cfg.MaxFileStore, "max-file-store", 0, "JetStream's file store limit in bytes (0: nats-server's default)")
	return cmd
}
