package children

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configures a PostgreSQL server private to driftless: its
// own cluster under Dir, its own port and socket folder.
type PostgresOptions struct {
	// BinDir holds initdb and postgres; empty means FindPostgres.
	BinDir string
	// Dir holds the cluster (Dir/data), the socket folder (Dir/run), the
	// superuser's password (Dir/superuser.password) and, by default, the log.
	// A cluster already in Dir/data is reused with the password kept beside it.
	Dir string
	// Listen is "host:port": the address the server listens on (loopback,
	// or an address apps in containers reach). Empty means 127.0.0.1:5432.
	Listen string
	// LogPath receives the server's output; empty means Dir/postgres.log.
	LogPath string
	// User is the unprivileged OS user the server runs as (PostgreSQL
	// refuses root). Empty means, when driftless runs as root, the Debian
	// "postgres" user, and otherwise driftless's own user.
	User string
}

// PostgresSuperuser is the name of the superuser role of a cluster
// StartPostgres creates.
const PostgresSuperuser = "driftless"

// passwordFile is the superuser's password, beside (not in) the data folder.
const passwordFile = "superuser.password"

// FindPostgres locates the folder holding PostgreSQL's server binaries:
// $DRIFTLESS_POSTGRES_BIN, then the newest /usr/lib/postgresql/<version>/bin
// (Debian's layout), then the folder of postgres on $PATH.
func FindPostgres() (string, error) {
	if d := os.Getenv("DRIFTLESS_POSTGRES_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "postgres")) && isExecutable(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		d := filepath.Dir(p)
		if isExecutable(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL not found: run `make setup` (apt-get install postgresql), " +
		"or set DRIFTLESS_POSTGRES_BIN to the folder holding initdb and postgres")
}

// pgVersion is the major version in a path /usr/lib/postgresql/<v>/bin.
func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// StartPostgres starts a PostgreSQL server over the cluster in opts.Dir,
// creating it with initdb the first time (a superuser role named
// PostgresSuperuser with a random password kept in Dir, mode 0600, owned by
// driftless's user; scram-sha-256 for every connection, never trust). It
// waits until the server answers and returns it with the superuser's DSN
// (a postgres:// URL to the "postgres" database, sslmode=disable). The DSN
// holds the password: never log it.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Process, string, error) {
	if opts.Dir == "" {
		return nil, "", errors.New("postgres options: Dir is required")
	}
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = FindPostgres(); err != nil {
			return nil, "", err
		}
	}
	listen := opts.Listen
	if listen == "" {
		listen = "127.0.0.1:5432"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, "", fmt.Errorf("postgres listen address %q: %w", listen, err)
	}
	cred, err := postgresCredential(opts.User)
	if err != nil {
		return nil, "", err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, "", fmt.Errorf("postgres folder: %w", err)
	}
	data, run := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	logPath := opts.LogPath
	if logPath == "" {
		logPath = filepath.Join(dir, "postgres.log")
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, "", fmt.Errorf("creating postgres folder: %w", err)
	}
	// The server's user must reach data/ and run/ through dir.
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, "", fmt.Errorf("opening postgres folder to its user: %w", err)
	}
	if err := reachable(dir, cred); err != nil {
		return nil, "", err
	}
	for _, d := range []string{data, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, "", fmt.Errorf("creating postgres folder: %w", err)
		}
		if err := chown(d, cred); err != nil {
			return nil, "", err
		}
	}
	password, err := ensureCluster(ctx, binDir, dir, data, logPath, cred)
	if err != nil {
		return nil, "", err
	}
	if err := writeHBA(data, cred); err != nil {
		return nil, "", err
	}
	dsnHost := host
	switch host {
	case "", "0.0.0.0", "::", "*":
		host, dsnHost = "*", "127.0.0.1" // every address; the DSN goes through loopback
	}
	args := []string{"-D", data, "-c", "listen_addresses=" + host, "-p", port, "-k", run,
		"-c", "unix_socket_permissions=0700"}
	p, err := startAs("postgres", filepath.Join(binDir, "postgres"), args, logPath, cred)
	if err != nil {
		return nil, "", err
	}
	p.stop = syscall.SIGINT // fast shutdown: SIGTERM would wait for every client to leave
	dsn := (&url.URL{Scheme: "postgres", User: url.UserPassword(PostgresSuperuser, password),
		Host: net.JoinHostPort(dsnHost, port), Path: "/postgres", RawQuery: "sslmode=disable"}).String()
	err = p.waitReady(ctx, 60*time.Second, func(ctx context.Context) error {
		return postgresAnswers(ctx, dsn)
	})
	if err != nil {
		return nil, "", err
	}
	return p, dsn, nil
}

// PostgresAnswers reports whether a PostgreSQL server accepts the DSN's
// credentials and answers a query.
func PostgresAnswers(ctx context.Context, dsn string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return postgresAnswers(ctx, dsn) == nil
}

func postgresAnswers(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// postgresCredential is the OS user the server runs as: nil means
// driftless's own (when it is not root).
func postgresCredential(name string) (*syscall.Credential, error) {
	if name == "" {
		if os.Geteuid() != 0 {
			return nil, nil
		}
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and needs an unprivileged user: "+
			"looking up %q: %w (run `make setup`, which installs Debian's postgresql and its postgres user)", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("user %q is root: PostgreSQL refuses to run as root", name)
	}
	if uint64(os.Geteuid()) == uid {
		return nil, nil
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// reachable checks that cred's user can traverse every folder above dir
// (a data folder under /root, mode 0700, cannot be the postgres user's).
func reachable(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("postgres folder: %w", err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		mode := st.Mode().Perm()
		if ok {
			switch {
			case sys.Uid == cred.Uid && mode&0o100 != 0,
				sys.Gid == cred.Gid && mode&0o010 != 0,
				mode&0o001 != 0:
			default:
				return fmt.Errorf("the postgres folder %s is out of reach of the user PostgreSQL runs as (uid %d): "+
					"%s is mode %04o; choose a folder under one every user can traverse (e.g. /var/lib/driftless)", dir, cred.Uid, d, mode)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func chown(path string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("giving %s to the postgres user: %w", path, err)
	}
	return nil
}

// ensureCluster runs initdb unless data already holds a cluster, and
// returns the superuser's password.
func ensureCluster(ctx context.Context, binDir, dir, data, logPath string, cred *syscall.Credential) (string, error) {
	pwPath := filepath.Join(dir, passwordFile)
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		pw, err := os.ReadFile(pwPath)
		if err != nil {
			return "", fmt.Errorf("reusing the cluster in %s: reading the superuser's password: %w", data, err)
		}
		return strings.TrimSpace(string(pw)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("making the superuser's password: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(buf)
	if err := os.WriteFile(pwPath, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the superuser's password: %w", err)
	}
	// initdb reads the password from a file its user can read, removed
	// once it is done.
	tmp := filepath.Join(dir, "run", "initdb.pw")
	if err := os.WriteFile(tmp, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing initdb's password file: %w", err)
	}
	defer os.Remove(tmp)
	if err := chown(tmp, cred); err != nil {
		return "", err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("opening postgres log: %w", err)
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), "-D", data, "-U", PostgresSuperuser,
		"--pwfile", tmp, "--auth-host", "scram-sha-256", "--auth-local", "scram-sha-256",
		"--encoding", "UTF8", "--locale", "C", "--no-instructions")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Run(); err != nil {
		_ = os.Remove(pwPath)
		return "", fmt.Errorf("initdb in %s: %w; see %s", data, err, logPath)
	}
	return password, nil
}

// hbaConf asks every connection, local or TCP, for a scram-sha-256
// password; which addresses can connect at all is listen_addresses's
// business.
const hbaConf = `# written by driftless at every start
local all all scram-sha-256
host  all all 0.0.0.0/0 scram-sha-256
host  all all ::/0 scram-sha-256
`

func writeHBA(data string, cred *syscall.Credential) error {
	p := filepath.Join(data, "pg_hba.conf")
	if err := os.WriteFile(p, []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	return chown(p, cred)
}
