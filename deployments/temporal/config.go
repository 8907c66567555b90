package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Offsets of the internal services' gRPC ports from the frontend port when their flags are 0.
// Keeping them next to --port means a second launcher started with another --port needs no
// other flag in the common case.
const (
	historyPortOffset  = 1
	matchingPortOffset = 2
	workerPortOffset   = 3
)

// config is the launcher's whole configuration, filled from command-line flags.
type config struct {
	// DBFile is the SQLite database holding persistence and visibility.
	DBFile string
	// IP is the address every listener binds to.
	IP string
	// Port is the frontend gRPC port that clients and workers dial.
	Port int
	// HistoryPort, MatchingPort and WorkerPort are the internal services' gRPC ports.
	HistoryPort, MatchingPort, WorkerPort int
	// HTTPPort is the frontend HTTP API port; 0 disables the HTTP API.
	HTTPPort int
	// MetricsPort is the Prometheus metrics port; 0 disables metrics.
	MetricsPort int
	// UIPort is the Web UI port; 0 disables the UI.
	UIPort int
	// UICodecEndpoint is the remote payload codec the UI calls to decode payloads; empty for none.
	UICodecEndpoint string
	// Namespace is registered (idempotently) at each start, with the custom search attributes.
	Namespace string
	// Retention is how long closed workflows are kept in Namespace.
	Retention time.Duration
	// LogLevel is one of debug, info, warn, error.
	LogLevel string
}

// parseFlags builds a config from args (without the program name), filling derived ports and
// validating the result. Usage and errors of the flag package itself go to output.
func parseFlags(args []string, output io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("temporal-launcher", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.DBFile, "db-file", ".data/temporal/temporal.db",
		"SQLite database file; its schema is created only when the file does not exist")
	fs.StringVar(&cfg.IP, "ip", "127.0.0.1", "IP address all listeners bind to")
	fs.IntVar(&cfg.Port, "port", 7233, "frontend gRPC port")
	fs.IntVar(&cfg.HistoryPort, "history-port", 0, "history service gRPC port (0: --port+1)")
	fs.IntVar(&cfg.MatchingPort, "matching-port", 0, "matching service gRPC port (0: --port+2)")
	fs.IntVar(&cfg.WorkerPort, "worker-port", 0, "internal worker service gRPC port (0: --port+3)")
	fs.IntVar(&cfg.HTTPPort, "http-port", 0, "frontend HTTP API port (0: disabled)")
	fs.IntVar(&cfg.MetricsPort, "metrics-port", 0, "Prometheus metrics port (0: disabled)")
	fs.IntVar(&cfg.UIPort, "ui-port", 8233, "Web UI port (0: no UI)")
	fs.StringVar(&cfg.UICodecEndpoint, "ui-codec-endpoint", "",
		"URL of a remote payload codec server the UI uses to decode payloads (empty: none)")
	fs.StringVar(&cfg.Namespace, "namespace", "default", "namespace to register with the custom search attributes")
	fs.DurationVar(&cfg.Retention, "retention", 30*24*time.Hour, "retention of closed workflows in the namespace")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.fillDerivedPorts()
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// fillDerivedPorts gives the internal services left at 0 a port next to the frontend's.
func (c *config) fillDerivedPorts() {
	if c.HistoryPort == 0 {
		c.HistoryPort = c.Port + historyPortOffset
	}
	if c.MatchingPort == 0 {
		c.MatchingPort = c.Port + matchingPortOffset
	}
	if c.WorkerPort == 0 {
		c.WorkerPort = c.Port + workerPortOffset
	}
}

// validate reports the first problem that would otherwise surface as an obscure server error.
func (c *config) validate() error {
	if c.DBFile == "" {
		return errors.New("--db-file must not be empty")
	}
	if net.ParseIP(c.IP) == nil {
		return fmt.Errorf("--ip %q is not an IP address", c.IP)
	}
	if c.Port <= 0 {
		return fmt.Errorf("--port %d must be positive", c.Port)
	}
	seen := make(map[int]string)
	for _, p := range c.listeners() {
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("%s port %d is out of range", p.name, p.port)
		}
		if other, dup := seen[p.port]; dup {
			return fmt.Errorf("%s and %s would both listen on port %d", other, p.name, p.port)
		}
		seen[p.port] = p.name
	}
	if c.Namespace == "" {
		return errors.New("--namespace must not be empty")
	}
	if c.Retention < 24*time.Hour {
		// The frontend refuses shorter retentions; failing here gives the clearer message.
		return fmt.Errorf("--retention %s must be at least 24h", c.Retention)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q must be debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// listener names one port the launcher binds.
type listener struct {
	name string
	port int
}

// listeners returns every port the launcher will bind, leaving out disabled ones.
func (c *config) listeners() []listener {
	all := []listener{
		{"frontend", c.Port},
		{"history", c.HistoryPort},
		{"matching", c.MatchingPort},
		{"worker", c.WorkerPort},
		{"frontend HTTP", c.HTTPPort},
		{"metrics", c.MetricsPort},
		{"UI", c.UIPort},
	}
	enabled := all[:0]
	for _, l := range all {
		if l.port != 0 {
			enabled = append(enabled, l)
		}
	}
	return enabled
}

// hostPort joins the listen IP with port, bracketing IPv6 addresses.
func (c *config) hostPort(port int) string {
	return net.JoinHostPort(c.IP, strconv.Itoa(port))
}

// dialHostPort is hostPort for connecting rather than binding: an unspecified listen address
// (0.0.0.0 or ::) is reached through loopback.
func (c *config) dialHostPort(port int) string {
	ip := net.ParseIP(c.IP)
	if ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		return net.JoinHostPort("::1", strconv.Itoa(port))
	}
	return c.hostPort(port)
}
