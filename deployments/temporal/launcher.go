package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	serverconfig "go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// clusterName is the single cluster's name, persisted in the database at first start.
	clusterName = "active"
	// numHistoryShards is persisted at first start and can never change for a database, so it
	// is a constant rather than a flag. One shard is plenty for a development stack.
	numHistoryShards = 1
	// namespaceSetupTimeout bounds the namespace/search-attribute reconciliation after start.
	namespaceSetupTimeout = 60 * time.Second
)

// run starts the Temporal server and the UI, registers the namespace and its search attributes,
// then blocks until ctx is cancelled and stops both. It returns nil after a clean shutdown.
func run(ctx context.Context, cfg config, logger log.Logger) error {
	attrs, err := parseSearchAttributes(searchAttributesFile)
	if err != nil {
		return err
	}
	dbFile, err := filepath.Abs(cfg.DBFile)
	if err != nil {
		return fmt.Errorf("resolving --db-file: %w", err)
	}
	// A port already taken would make the server or the UI fail deep inside (the UI server
	// even exits the process), so check them all up front and say which one.
	if err := checkPortsFree(cfg); err != nil {
		return err
	}

	sqlCfg := sqliteConfig(dbFile)
	if err := prepareDatabase(sqlCfg, dbFile, cfg, attrs, logger); err != nil {
		return err
	}

	srv, err := newTemporalServer(cfg, sqlCfg, logger)
	if err != nil {
		return fmt.Errorf("creating Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("starting Temporal server: %w", err)
	}
	defer func() {
		logger.Info("Stopping Temporal server")
		if err := srv.Stop(); err != nil {
			logger.Error("Stopping Temporal server failed", tag.Error(err))
		}
	}()

	// UI.Start blocks until Stop and returns nil then; any earlier return is a failure.
	uiDone := make(chan error, 1)
	if cfg.UIPort != 0 {
		ui := newUIServer(cfg)
		go func() { uiDone <- ui.Start() }()
		defer ui.Stop() // runs before the server stops, so the UI never talks to a dead frontend
	}

	setupCtx, cancel := context.WithTimeout(ctx, namespaceSetupTimeout)
	defer cancel()
	if err := ensureNamespace(setupCtx, cfg.dialHostPort(cfg.Port), cfg.Namespace, cfg.Retention, attrs, logger); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting: still a clean shutdown
		}
		return fmt.Errorf("setting up namespace %q: %w", cfg.Namespace, err)
	}

	readyTags := []tag.Tag{
		tag.NewStringTag("frontend", cfg.dialHostPort(cfg.Port)),
		tag.NewStringTag("namespace", cfg.Namespace),
		tag.NewStringTag("db-file", dbFile),
	}
	if cfg.UIPort != 0 {
		readyTags = append(readyTags, tag.NewStringTag("ui", "http://"+cfg.dialHostPort(cfg.UIPort)))
	}
	logger.Info("Temporal launcher ready", readyTags...)

	select {
	case <-ctx.Done():
		logger.Info("Shutdown requested")
		return nil
	case err := <-uiDone:
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		return fmt.Errorf("UI server: %w", err)
	}
}

// checkPortsFree fails with the name of the first configured port that cannot be bound.
func checkPortsFree(cfg config) error {
	for _, l := range cfg.listeners() {
		ln, err := net.Listen("tcp", cfg.hostPort(l.port))
		if err != nil {
			return fmt.Errorf("%s port %d is not available: %w", l.name, l.port, err)
		}
		if err := ln.Close(); err != nil {
			return fmt.Errorf("releasing %s port %d after probing it: %w", l.name, l.port, err)
		}
	}
	return nil
}

// sqliteConfig describes the SQLite file that holds both persistence and visibility.
func sqliteConfig(dbFile string) *serverconfig.SQL {
	return &serverconfig.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbFile,
		// rwc: open read-write, create if missing. The schema itself is created by
		// prepareDatabase, never by the plugin, so an existing file is never re-initialised.
		ConnectAttributes: map[string]string{"mode": "rwc"},
	}
}

// prepareDatabase creates the schema when dbFile does not exist, then pre-registers the
// namespace (a no-op when it exists). Registering it in the database before the server starts
// means it is usable as soon as the frontend answers, without waiting for the namespace cache.
func prepareDatabase(sqlCfg *serverconfig.SQL, dbFile string, cfg config, attrs map[string]enumspb.IndexedValueType, logger log.Logger) error {
	_, err := os.Stat(dbFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := createDatabase(sqlCfg, dbFile); err != nil {
			return err
		}
		logger.Info("Created Temporal database", tag.NewStringTag("db-file", dbFile))
	case err != nil:
		return fmt.Errorf("checking database file: %w", err)
	default:
		logger.Info("Using existing Temporal database", tag.NewStringTag("db-file", dbFile))
	}

	nsCfg, err := sqliteschema.NewNamespaceConfig(clusterName, cfg.Namespace, false, attrs)
	if err != nil {
		return fmt.Errorf("preparing namespace %q: %w", cfg.Namespace, err)
	}
	nsCfg.Detail.Config.Retention = durationpb.New(cfg.Retention)
	if err := sqliteschema.CreateNamespaces(sqlCfg, nsCfg); err != nil {
		return fmt.Errorf("pre-registering namespace %q: %w", cfg.Namespace, err)
	}
	return nil
}

// createDatabase builds the schema in a scratch file and renames it into place, so a launcher
// killed half-way never leaves a dbFile that exists but lacks tables (which the next start
// would take for an initialised database).
func createDatabase(sqlCfg *serverconfig.SQL, dbFile string) error {
	if err := os.MkdirAll(filepath.Dir(dbFile), 0o755); err != nil {
		return fmt.Errorf("creating database directory: %w", err)
	}
	scratch := dbFile + ".creating"
	for _, leftover := range []string{scratch, scratch + "-journal"} {
		if err := os.Remove(leftover); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing leftover %s: %w", leftover, err)
		}
	}
	scratchCfg := *sqlCfg
	scratchCfg.DatabaseName = scratch
	if err := sqliteschema.SetupSchema(&scratchCfg); err != nil {
		return fmt.Errorf("creating schema in %s: %w", scratch, err)
	}
	if err := os.Rename(scratch, dbFile); err != nil {
		return fmt.Errorf("moving new database into place: %w", err)
	}
	return nil
}

// newTemporalServer configures all four Temporal services in this process on cfg's ports.
func newTemporalServer(cfg config, sqlCfg *serverconfig.SQL, logger log.Logger) (temporal.Server, error) {
	frontend := cfg.dialHostPort(cfg.Port)
	conf := &serverconfig.Config{}
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = net.ParseIP(cfg.IP).String()
	if cfg.MetricsPort != 0 {
		conf.Global.Metrics = &metrics.Config{
			Prometheus: &metrics.PrometheusConfig{
				ListenAddress: cfg.hostPort(cfg.MetricsPort),
				HandlerPath:   "/metrics",
			},
		}
	}

	const store = "sqlite-default"
	conf.Persistence = serverconfig.Persistence{
		DefaultStore:     store,
		VisibilityStore:  store,
		NumHistoryShards: numHistoryShards,
		DataStores:       map[string]serverconfig.DataStore{store: {SQL: sqlCfg}},
	}

	clusterInfo := cluster.ClusterInformation{
		Enabled:                true,
		InitialFailoverVersion: 1,
		RPCAddress:             frontend,
	}
	if cfg.HTTPPort != 0 {
		clusterInfo.HTTPAddress = cfg.dialHostPort(cfg.HTTPPort)
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation:       map[string]cluster.ClusterInformation{clusterName: clusterInfo},
	}
	conf.DCRedirectionPolicy.Policy = "noop"

	service := func(port, httpPort int) serverconfig.Service {
		return serverconfig.Service{RPC: serverconfig.RPC{GRPCPort: port, HTTPPort: httpPort, BindOnIP: cfg.IP}}
	}
	conf.Services = map[string]serverconfig.Service{
		string(primitives.FrontendService): service(cfg.Port, cfg.HTTPPort),
		string(primitives.HistoryService):  service(cfg.HistoryPort, 0),
		string(primitives.MatchingService): service(cfg.MatchingPort, 0),
		string(primitives.WorkerService):   service(cfg.WorkerPort, 0),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend

	// Static membership: every service is in this process, so ringpop (and its extra
	// membership ports) is not needed.
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(frontend),
		primitives.HistoryService:  static.SingleLocalHost(cfg.dialHostPort(cfg.HistoryPort)),
		primitives.MatchingService: static.SingleLocalHost(cfg.dialHostPort(cfg.MatchingPort)),
		primitives.WorkerService:   static.SingleLocalHost(cfg.dialHostPort(cfg.WorkerPort)),
	}

	dynamic := dynamicconfig.StaticClient{
		// The UI lists and counts workflows on every page; the default of 10 visibility
		// requests per second is easy to exceed with the UI open while tests run.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
	}

	return temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*serverconfig.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
		temporal.WithDynamicConfigClient(dynamic),
	)
}

// newUIServer configures the Web UI to talk to the frontend over gRPC. It embeds its assets,
// so nothing is read from disk.
func newUIServer(cfg config) *uiserver.Server {
	return uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                uiHost(cfg.IP),
		Port:                cfg.UIPort,
		TemporalGRPCAddress: cfg.dialHostPort(cfg.Port),
		EnableUI:            true,
		DefaultNamespace:    cfg.Namespace,
		Codec:               uiconfig.Codec{Endpoint: cfg.UICodecEndpoint},
		// Served over plain HTTP on loopback: a Secure cookie would never be sent back.
		CORS: uiconfig.CORS{CookieInsecure: true},
		// The stack runs offline; do not make browsers fetch release news.
		DisableNewsFetch: true,
		HideLogs:         true,
	}))
}

// uiHost brackets an IPv6 address, because the UI server joins Host and Port with a plain colon.
func uiHost(ip string) string {
	if parsed := net.ParseIP(ip); parsed != nil && parsed.To4() == nil {
		return "[" + ip + "]"
	}
	return ip
}
