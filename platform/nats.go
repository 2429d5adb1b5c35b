package platform

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/files"
)

// NATSPasswordEnv is the variable holding the NATS password when
// NATSClientConfig.Password is empty (so that it is not on a command line).
const NATSPasswordEnv = "DRIFTLESS_NATS_PASSWORD"

// NATSClientConfig is how a role authenticates to a NATS server it is
// given the URL of: a user and password (bus.Connect), and TLS when
// certificates are given.
type NATSClientConfig struct {
	// User and Password are the role's NATS credential; an empty Password
	// is read from NATSPasswordEnv. Never logged.
	User, Password string
	// CAFile is the PEM of the authorities the server's certificate
	// chains to (TLS); CertFile and KeyFile the client's certificate, for
	// servers that verify clients.
	CAFile, CertFile, KeyFile string
}

// ownControllerUser is the NATS user of a controller's own connection to
// its embedded server; its password is made at each start and never
// leaves the process. A users file or NATSAuth cannot take the name.
const ownControllerUser = "_driftless-controller"

// ConnectNATS dials NATS at url for one component as id, named for the
// server's connection list.
func ConnectNATS(url, component string, id bus.Identity, cl NATSClientConfig, log *slog.Logger) (*nats.Conn, error) {
	host, _ := os.Hostname()
	if cl.Password == "" && cl.User != "" {
		cl.Password = os.Getenv(NATSPasswordEnv)
	}
	nc, err := bus.Connect(bus.ClientConfig{URL: url, Name: "driftless-" + component + "@" + host,
		User: cl.User, Password: cl.Password, Identity: id,
		CAFile: cl.CAFile, CertFile: cl.CertFile, KeyFile: cl.KeyFile}, log)
	if err != nil {
		return nil, fmt.Errorf("connecting %s to NATS: %w", component, err)
	}
	return nc, nil
}

// newCredential makes a credential with a fresh random password, for a
// connection inside this process.
func newCredential(user string, id bus.Identity) bus.Credential {
	return bus.Credential{User: user, Password: rand.Text(), Identity: id}
}

// embeddedNATS starts the controller's embedded NATS server: its own
// connection authenticates with own, remote cells and routers through
// cfg.NATSAuth, then the users of cfg.NATSUsersFile.
func embeddedNATS(cfg ControllerConfig, own bus.Credential, log *slog.Logger) (*bus.Embedded, error) {
	ownAuth, err := bus.StaticUsers(own)
	if err != nil {
		return nil, err
	}
	var fileAuth bus.Authenticator
	if cfg.NATSUsersFile != "" {
		if fileAuth, err = LoadNATSUsers(cfg.NATSUsersFile); err != nil {
			return nil, err
		}
	}
	if cfg.NATSAuth == nil && fileAuth == nil {
		log.Info("embedded NATS server: no remote cell or router can connect (give --nats-users)")
	}
	// The own user is asked first: NATSAuth and the file never decide it.
	auth := bus.FirstOf(ownAuth, cfg.NATSAuth, fileAuth)
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Listen: cfg.NATSListen, Auth: auth,
		TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey, Log: log, StoreDir: natsStore(cfg.DataDir)})
	if err != nil {
		return nil, fmt.Errorf("starting the embedded NATS server: %w", err)
	}
	return srv, nil
}

// natsUsersFile is the YAML of --nats-users.
type natsUsersFile struct {
	Users []struct {
		User     string `yaml:"user"`
		Password string `yaml:"password"`
		Role     string `yaml:"role"`
		Cell     string `yaml:"cell"`
	} `yaml:"users"`
}

// LoadNATSUsers reads a NATS users file (--nats-users) and authenticates
// against it:
//
//	users:
//	  - {user: cell-1, password: "…", role: cell, cell: cell-1}
//	  - {user: router-1, password: "…", role: router}
//
// The file must not be readable by group or others (mode 0600). Its
// errors never show a password.
func LoadNATSUsers(path string) (bus.Authenticator, error) {
	creds, err := ReadNATSUsers(path)
	if err != nil {
		return nil, err
	}
	auth, err := bus.StaticUsers(creds...)
	if err != nil {
		return nil, fmt.Errorf("NATS users file %s: %w", path, err)
	}
	return auth, nil
}

// ReadNATSUsers reads the credentials of a NATS users file (LoadNATSUsers
// describes it), in the file's order: what a server checks clients
// against, and what hollow cells (RunSimCells) connect with.
func ReadNATSUsers(path string) ([]bus.Credential, error) {
	data, err := files.ReadPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("NATS users file: %w", err)
	}
	var f natsUsersFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("NATS users file %s: %s", path, strings.Join(te.Errors, "; "))
		}
		return nil, fmt.Errorf("NATS users file %s is not YAML of users (user, password, role, cell)", path) // the parser quotes lines
	}
	creds := make([]bus.Credential, 0, len(f.Users))
	for _, u := range f.Users {
		if u.User == ownControllerUser {
			return nil, fmt.Errorf("NATS users file %s: user %q is the controller's own", path, u.User)
		}
		creds = append(creds, bus.Credential{User: u.User, Password: u.Password,
			Identity: bus.Identity{Role: bus.Role(u.Role), Cell: u.Cell}})
	}
	if len(creds) == 0 {
		return nil, fmt.Errorf("NATS users file %s lists no users", path)
	}
	return creds, nil
}

// natsStore is where an embedded server keeps JetStream's files (the
// kept logs and events): under the data folder, so that they outlive a
// restart.
func natsStore(dataDir string) string { return filepath.Join(dataDir, "nats") }

// devNATS starts dev's embedded NATS server with one fresh credential per
// part (all in this process) and returns them.
func devNATS(listen, dataDir, cellID string, log *slog.Logger) (srv *bus.Embedded, ctl, cell, rtr bus.Credential, err error) {
	ctl = newCredential("dev-controller", bus.Identity{Role: bus.RoleController})
	cell = newCredential("dev-cell", bus.Identity{Role: bus.RoleCell, Cell: cellID})
	rtr = newCredential("dev-router", bus.Identity{Role: bus.RoleRouter})
	auth, err := bus.StaticUsers(ctl, cell, rtr)
	if err != nil {
		return nil, ctl, cell, rtr, fmt.Errorf("dev's NATS users: %w", err)
	}
	srv, err = bus.StartEmbedded(bus.EmbeddedConfig{Listen: listen, Auth: auth, Log: log, StoreDir: natsStore(dataDir)})
	if err != nil {
		return nil, ctl, cell, rtr, fmt.Errorf("starting the embedded NATS server: %w", err)
	}
	return srv, ctl, cell, rtr, nil
}

// inProcess is the client side of a credential made in this process.
func inProcess(c bus.Credential) NATSClientConfig {
	return NATSClientConfig{User: c.User, Password: c.Password}
}
