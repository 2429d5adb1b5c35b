package platform

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/agents"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/files"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/sim"
)

// SimCellsConfig configures `driftless sim cells`: hollow cells (package
// sim) for benchmarks and scale tests only, never for apps.
type SimCellsConfig struct {
	// Count is how many hollow cells run in this process.
	Count int
	// NATSUsersFile is a NATS users file (LoadNATSUsers's format): the
	// i-th hollow cell connects as its i-th user of role cell, with that
	// user's cell id; the controller's server knows the same file
	// (--nats-users). It needs Count such users.
	NATSUsersFile string
	NATSURL       string
	// NATSClient is TLS only: the users come from NATSUsersFile.
	NATSClient NATSClientConfig
	// ConsulAddr and ConsulToken (policy catalog.RoleCell) are the Consul
	// agent every hollow cell registers in.
	ConsulAddr, ConsulToken string
	// Capacity is each cell's (MemoryMB: --memory).
	Capacity model.Resources
	// StartLatency is how long each instance stays STARTING.
	StartLatency time.Duration
	// Stage makes the cells answer staging requests with a made-up
	// droplet after StageLatency.
	Stage        bool
	StageLatency time.Duration
	// Address is where instances are said to run; Backend ("host:port"),
	// when given, is where every instance is registered instead (one HTTP
	// server that answers for them all). Without it instances get made-up
	// ports from PortMin.
	Address, Backend string
	PortMin          int
	// HeartbeatInterval, RenewInterval and CellTTL are the agent's
	// settings of the same names (RenewInterval is its SyncInterval).
	HeartbeatInterval, RenewInterval, CellTTL time.Duration
	Log                                       *slog.Logger
	// Ready, if set, is called with the cell ids once every cell is
	// connected.
	Ready func(cells []string)
}

// DefaultSimCellsConfig is `driftless sim cells`'s configuration when no
// flag says otherwise: the agent's intervals, 4 GB and 256 instances per
// cell, instances RUNNING after 100 ms.
func DefaultSimCellsConfig() SimCellsConfig {
	return SimCellsConfig{
		Count:             1,
		NATSURL:           DefaultNATSURL,
		ConsulAddr:        DefaultConsul,
		Capacity:          model.Resources{MemoryMB: 4096, DiskMB: 100 * 1024, Instances: 256},
		StartLatency:      100 * time.Millisecond,
		StageLatency:      100 * time.Millisecond,
		Stage:             true,
		Address:           "127.0.0.1",
		PortMin:           20000,
		HeartbeatInterval: time.Second,
		RenewInterval:     2 * time.Second,
		CellTTL:           agents.DefaultCellTTL,
	}
}

// RunSimCells runs cfg.Count hollow cells until ctx ends: each its own
// NATS connection as its own cell, all through one Consul client. When
// ctx ends they stop as killed agents do (package sim): the controller
// loses them.
func RunSimCells(ctx context.Context, cfg SimCellsConfig) error {
	log := orDefault(cfg.Log)
	if cfg.Count <= 0 {
		return errors.New("sim cells: --count must be at least 1")
	}
	if cfg.NATSUsersFile == "" {
		return errors.New("sim cells: each hollow cell connects as its own NATS user: give --nats-users FILE (the controller's)")
	}
	creds, err := ReadNATSUsers(cfg.NATSUsersFile)
	if err != nil {
		return err
	}
	var cells []bus.Credential
	for _, c := range creds {
		if c.Identity.Role == bus.RoleCell && len(cells) < cfg.Count {
			cells = append(cells, c)
		}
	}
	if len(cells) < cfg.Count {
		return fmt.Errorf("sim cells: %s has %d user(s) of role cell, --count asks for %d", cfg.NATSUsersFile, len(cells), cfg.Count)
	}
	cc, err := catalog.NewClient(cfg.ConsulAddr, cfg.ConsulToken)
	if err != nil {
		return fmt.Errorf("sim cells: connecting to Consul: %w", err)
	}
	addr, fixed := cfg.Address, 0
	if cfg.Backend != "" {
		host, port, err := net.SplitHostPort(cfg.Backend)
		if err != nil {
			return fmt.Errorf("sim cells: --backend %q is not host:port: %w", cfg.Backend, err)
		}
		if fixed, err = strconv.Atoi(port); err != nil || fixed <= 0 {
			return fmt.Errorf("sim cells: --backend %q has no port", cfg.Backend)
		}
		addr = host
	}
	ports := sim.Ports(fixed, cfg.PortMin)
	hollow := make([]*sim.Cell, 0, len(cells))
	ids := make([]string, 0, len(cells))
	for _, cred := range cells {
		id := cred.Identity.Cell
		cl := cfg.NATSClient
		cl.User, cl.Password = cred.User, cred.Password
		nc, err := ConnectNATS(cfg.NATSURL, "sim-"+id, cred.Identity, cl, log)
		if err != nil {
			return err
		}
		defer nc.Close()
		c, err := sim.New(sim.Config{CellID: id, NATS: nc, Address: addr, Capacity: cfg.Capacity,
			Registry:     agents.NewConsulRegistry(cc, id, addr, cfg.CellTTL),
			StartLatency: cfg.StartLatency, Stage: cfg.Stage, StageLatency: cfg.StageLatency,
			HeartbeatInterval: cfg.HeartbeatInterval, CellRenewInterval: cfg.CellTTL / 3, RenewInterval: cfg.RenewInterval,
			Port: ports, Log: log})
		if err != nil {
			return err
		}
		hollow, ids = append(hollow, c), append(ids, id)
	}
	log.Info("hollow cells running (for benchmarks and scale tests only)", "cells", len(hollow), "memory_mb", cfg.Capacity.MemoryMB,
		"start_latency", cfg.StartLatency)
	if cfg.Ready != nil {
		cfg.Ready(ids)
	}
	return sim.RunAll(ctx, hollow)
}

// SimNATSUsers makes count credentials of role cell, cells
// prefix1…prefixN, each user named after its cell with a random password.
func SimNATSUsers(prefix string, count int) []bus.Credential {
	out := make([]bus.Credential, 0, count)
	for i := 1; i <= count; i++ {
		id := prefix + strconv.Itoa(i)
		out = append(out, bus.Credential{User: id, Password: rand.Text(), Identity: bus.Identity{Role: bus.RoleCell, Cell: id}})
	}
	return out
}

// WriteNATSUsers writes creds as a NATS users file (mode 0600) that
// LoadNATSUsers and ReadNATSUsers read.
func WriteNATSUsers(path string, creds []bus.Credential) error {
	var f natsUsersFile
	for _, c := range creds {
		f.Users = append(f.Users, struct {
			User     string `yaml:"user"`
			Password string `yaml:"password"`
			Role     string `yaml:"role"`
			Cell     string `yaml:"cell"`
		}{c.User, c.Password, string(c.Identity.Role), c.Identity.Cell})
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding NATS users: %w", err)
	}
	if err := files.WriteAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("writing NATS users file: %w", err)
	}
	return nil
}
