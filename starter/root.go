package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/tclient"
)

// rootOptions is what every command shares: where to write, and the
// configuration, loaded once from the environment.
type rootOptions struct {
	out, errOut io.Writer
	cfg         config.Config
	cfgErr      error
	// dial is replaceable so tests can point commands at a test server.
	dial func(ctx context.Context, cfg config.Config) (client.Client, error)
}

func newRootOptions(out, errOut io.Writer) *rootOptions {
	cfg, err := config.FromEnv()
	return &rootOptions{
		out: out, errOut: errOut, cfg: cfg, cfgErr: err,
		dial: func(ctx context.Context, cfg config.Config) (client.Client, error) {
			return tclient.Dial(ctx, cfg, slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn})))
		},
	}
}

func (o *rootOptions) config() (config.Config, error) {
	if o.cfgErr != nil {
		return config.Config{}, fmt.Errorf("configuration: %w", o.cfgErr)
	}
	return o.cfg, nil
}

func (o *rootOptions) client(ctx context.Context) (client.Client, config.Config, error) {
	cfg, err := o.config()
	if err != nil {
		return nil, cfg, err
	}
	c, err := o.dial(ctx, cfg)
	return c, cfg, err
}

// policyFile is the policy YAML the commands read (PROVISIO_POLICY).
func (o *rootOptions) policyFile() string { return o.cfg.PolicyFile }

// rosterFile is the HR roster people are looked up in (PROVISIO_ROSTER).
func (o *rootOptions) rosterFile() string { return o.cfg.RosterFile }

// printJSON writes v indented, for --output json.
func (o *rootOptions) printJSON(v any) error {
	enc := json.NewEncoder(o.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRootCmd(opts *rootOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "starter",
		Short: "Start and inspect user provisioning workflows",
		Long: `starter is the command line of the provisioning system.

HR systems use it to hire people; operators use it to see what happened to
a person. Configuration comes from environment variables (see README.md).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(opts.out)
	root.SetErr(opts.errOut)
	root.AddCommand(
		newHireCmd(opts),
		newStatusCmd(opts),
		newPolicyCmd(opts),
		newPlanCmd(opts),
		newTerminateCmd(opts),
		newRetryCmd(opts),
		newMoveCmd(opts),
		newPendingCmd(opts),
		newApproveCmd(opts),
		newRejectCmd(opts),
		newRequestAccessCmd(opts),
		newExtendAccessCmd(opts),
		newRevokeAccessCmd(opts),
		newSyncCmd(opts),
		newServeCmd(opts),
		newRunsCmd(opts),
		newAccessCmd(opts),
		newAuditCmd(opts),
		newCodecServerCmd(opts),
		newReconcileCmd(opts),
	)
	return root
}

// outputFlag adds --output to a read command.
func outputFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVarP(v, "output", "o", "table", "output format: table or json")
}

func checkOutput(v string) error {
	if v != "table" && v != "json" {
		return fmt.Errorf("--output: want table or json, got %q", v)
	}
	return nil
}
