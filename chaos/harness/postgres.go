package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// postgresServer is a private PostgreSQL cluster started with the
// machine's initdb and pg_ctl. deployments/postgres/postgres.sh cannot be
// used for it: it uses the shared server whenever 127.0.0.1:5432 answers.
type postgresServer struct {
	binDir  string
	dir     string
	dataDir string
	sockDir string
	logFile string
	port    int
	// owner runs initdb and the server when this process is root, which
	// both refuse.
	owner string
}

// findPGBinDir returns the directory of pg_ctl and initdb: the PATH's, or
// the newest /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH).
func findPGBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("initdb and pg_ctl are not installed (Debian: apt-get install postgresql): the fault tests need a private PostgreSQL cluster they may stop")
}

// startPostgres creates a cluster under dir and starts it on a free port,
// trusting local connections (it listens on 127.0.0.1 only).
func startPostgres(ctx context.Context, dir string) (*postgresServer, error) {
	bin, err := findPGBinDir()
	if err != nil {
		return nil, err
	}
	s := &postgresServer{
		binDir: bin, dir: dir,
		dataDir: filepath.Join(dir, "db"), sockDir: filepath.Join(dir, "sock"), logFile: filepath.Join(dir, "postgres.log"),
	}
	if err := os.MkdirAll(s.sockDir, 0o755); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root needs a 'postgres' system user for the private PostgreSQL cluster")
		}
		s.owner = "postgres"
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := chownAll(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if out, err := s.command(ctx, "initdb", "-D", s.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(string(out), 10))
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	return s, s.start(ctx)
}

func chownAll(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// command runs one of the cluster's programs as the cluster's owner.
func (s *postgresServer) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	bin := filepath.Join(s.binDir, name)
	var cmd *exec.Cmd
	if s.owner != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.owner, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	// The owner must be able to enter the working directory.
	cmd.Dir = s.dir
	return cmd
}

// start starts the server and waits until it accepts connections. fsync is
// off: this cluster is thrown away after the run, and a stop is always
// clean (pg_ctl -m fast).
func (s *postgresServer) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200", s.port, s.sockDir)
	out, err := s.command(ctx, "pg_ctl", "-D", s.dataDir, "-l", s.logFile, "-w", "-t", "60", "-o", opts, "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(s.logFile)
		return fmt.Errorf("start PostgreSQL on port %d: %w: %s %s", s.port, err, out, lastLines(string(log), 10))
	}
	return nil
}

// stop shuts the server down (fast: open sessions are disconnected, as in
// a real outage) and waits until it is gone.
func (s *postgresServer) stop(ctx context.Context) error {
	out, err := s.command(ctx, "pg_ctl", "-D", s.dataDir, "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("stop PostgreSQL: %w: %s", err, out)
	}
	return nil
}

// url is a connection URL for user and database on the cluster.
func (s *postgresServer) url(user, database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", user, s.port, database)
}

// lastLines returns the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls ready every interval until it returns nil or timeout
// passes, and returns its last error then.
func waitFor(ctx context.Context, timeout, interval time.Duration, ready func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
