package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/provisio-dev/provisio/internal/scimapp"
	"github.com/provisio-dev/provisio/workflows"
)

// freePort returns a TCP port nothing listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freeBasePort finds p such that p..p+3 are free: the launcher's frontend,
// history, matching and internal worker ports.
func freeBasePort() (int, error) {
	for range 50 {
		n, err := rand.Int(rand.Reader, big.NewInt(20000))
		if err != nil {
			return 0, err
		}
		base := 20000 + int(n.Int64())
		ok := true
		for p := base; p <= base+3 && ok; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			_ = l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("no four free consecutive ports")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// slapdServer is a private OpenLDAP server run by deployments/slapd/slapd.sh
// with its own DATA_DIR and port.
type slapdServer struct {
	script   string
	dataDir  string
	port     int
	password string
}

func startSlapd(ctx context.Context, repoRoot, dir, password string) (*slapdServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &slapdServer{script: filepath.Join(repoRoot, "deployments", "slapd", "slapd.sh"), dataDir: dir, port: port, password: password}
	return s, s.run(ctx, "start")
}

// run calls the script with start or stop.
func (s *slapdServer) run(ctx context.Context, verb string) error {
	cmd := exec.CommandContext(ctx, "bash", s.script, verb)
	cmd.Env = append(os.Environ(),
		"DATA_DIR="+s.dataDir, "LDAP_PORT="+strconv.Itoa(s.port),
		"LDAP_BIND_PASSWORD="+s.password, "SLAPD_LOGLEVEL=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("slapd.sh %s: %w: %s", verb, err, lastLines(string(out), 10))
	}
	return nil
}

func (s *slapdServer) url() string { return fmt.Sprintf("ldap://127.0.0.1:%d", s.port) }

// launcher is a private Temporal server: the launcher `make stack` builds,
// on its own ports and SQLite file, without the UI.
type launcher struct {
	bin, db, logFile string
	port             int
	cmd              *exec.Cmd
	exited           chan struct{}
}

// launcherBinary is the launcher `make stack` builds into DATA_DIR/bin.
func launcherBinary(repoRoot string) (string, error) {
	dataDir := os.Getenv("DATA_DIR")
	if dataDir == "" {
		dataDir = filepath.Join(repoRoot, ".data")
	}
	bin := filepath.Join(dataDir, "bin", "temporal-launcher")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("the Temporal launcher is not built (%s): run `make stack`", bin)
	}
	return bin, nil
}

func newLauncher(repoRoot, dir string) (*launcher, error) {
	bin, err := launcherBinary(repoRoot)
	if err != nil {
		return nil, err
	}
	port, err := freeBasePort()
	if err != nil {
		return nil, err
	}
	return &launcher{bin: bin, db: filepath.Join(dir, "temporal.db"), logFile: filepath.Join(dir, "launcher.log"), port: port}, nil
}

func (l *launcher) address() string { return fmt.Sprintf("127.0.0.1:%d", l.port) }

// start runs the launcher and waits until its namespace has the search
// attributes the workflows use.
func (l *launcher) start(ctx context.Context) error {
	logFile, err := os.OpenFile(l.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(l.bin, "--db-file", l.db, "--port", strconv.Itoa(l.port), "--ui-port", "0", "--log-level", "error")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server must not outlive a harness that dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start the Temporal launcher: %w", err)
	}
	l.cmd, l.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(l.exited)
	}()
	err = waitFor(ctx, 3*time.Minute, 500*time.Millisecond, func(ctx context.Context) error {
		select {
		case <-l.exited:
			return errors.New("the launcher exited")
		default:
		}
		return l.ready(ctx)
	})
	if err != nil {
		log, _ := os.ReadFile(l.logFile)
		return fmt.Errorf("the Temporal launcher at %s is not ready: %w\n%s", l.address(), err, lastLines(string(log), 20))
	}
	return nil
}

// ready reports nil once the namespace exists with every search attribute.
func (l *launcher) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: l.address(), Namespace: "default",
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"}); err != nil {
		return err
	}
	attrs, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		return err
	}
	for _, k := range workflows.SearchAttributes() {
		if _, ok := attrs.GetCustomAttributes()[k.GetName()]; !ok {
			return fmt.Errorf("search attribute %s not registered yet", k.GetName())
		}
	}
	return nil
}

// stop sends SIGTERM and waits for a clean exit, killing the launcher if
// it takes longer than a minute.
func (l *launcher) stop() {
	if l.cmd == nil {
		return
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
	case <-time.After(time.Minute):
		_ = l.cmd.Process.Kill()
		<-l.exited
	}
	l.cmd = nil
}

// scimServer is the demo SCIM application served in-process, its data in
// a schema of its own on the shared PostgreSQL (so the PostgreSQL outage,
// which is of the private cluster, is not also a SCIM outage).
type scimServer struct {
	srv   *http.Server
	store *scimapp.Store
	opts  scimapp.Options
	url   string
	token string
}

// scimDatabase is the shared database the demo app's test schemas live in.
const scimDatabase = "scimdemo_test"

func startSCIM(ctx context.Context, pgURL string) (*scimServer, error) {
	opts := scimapp.Options{URL: pgURL, Database: scimDatabase, Schema: "chaos_" + randomHex(6)}
	store, err := scimapp.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("open the SCIM app's store on the shared PostgreSQL (is `make stack` up?): %w", err)
	}
	s := &scimServer{store: store, opts: opts, token: "chaos-" + randomHex(8)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, err
	}
	s.url = "http://" + ln.Addr().String() + scimapp.BasePath
	h, err := scimapp.NewHandler(scimapp.HandlerOptions{Store: store, Token: s.token, BaseURL: s.url,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		_ = ln.Close()
		s.close()
		return nil, err
	}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// close stops the server and drops its schema.
func (s *scimServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.srv != nil {
		_ = s.srv.Shutdown(ctx)
	}
	s.store.Close()
	cfg, err := pgx.ParseConfig(s.opts.URL)
	if err != nil {
		return
	}
	cfg.Database = s.opts.Database
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{s.opts.Schema}.Sanitize()+` CASCADE`)
}
