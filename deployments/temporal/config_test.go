package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    func(*config) // adjusts the defaults to the expected config
		wantErr string
	}{
		{
			name: "defaults",
			args: nil,
			want: func(*config) {},
		},
		{
			name: "internal ports follow --port",
			args: []string{"--port", "17233", "--ui-port", "18233", "--db-file", "/tmp/x.db"},
			want: func(c *config) {
				c.Port, c.HistoryPort, c.MatchingPort, c.WorkerPort = 17233, 17234, 17235, 17236
				c.UIPort = 18233
				c.DBFile = "/tmp/x.db"
			},
		},
		{
			name: "explicit ports win",
			args: []string{"--port", "20000", "--history-port", "20010", "--matching-port", "20020",
				"--worker-port", "20030", "--http-port", "20040", "--metrics-port", "20050", "--ui-port", "0"},
			want: func(c *config) {
				c.Port, c.HistoryPort, c.MatchingPort, c.WorkerPort = 20000, 20010, 20020, 20030
				c.HTTPPort, c.MetricsPort, c.UIPort = 20040, 20050, 0
			},
		},
		{
			name: "codec endpoint, namespace, retention, log level",
			args: []string{"--ui-codec-endpoint", "http://127.0.0.1:8888", "--namespace", "ci",
				"--retention", "48h", "--log-level", "warn"},
			want: func(c *config) {
				c.UICodecEndpoint = "http://127.0.0.1:8888"
				c.Namespace = "ci"
				c.Retention = 48 * time.Hour
				c.LogLevel = "warn"
			},
		},
		{name: "port clash", args: []string{"--ui-port", "7234"}, wantErr: "history and UI would both listen on port 7234"},
		{name: "port out of range", args: []string{"--port", "65534"}, wantErr: "matching port 65536 is out of range"},
		{name: "zero frontend port", args: []string{"--port", "0"}, wantErr: "--port 0 must be positive"},
		{name: "bad ip", args: []string{"--ip", "localhost"}, wantErr: "is not an IP address"},
		{name: "bad log level", args: []string{"--log-level", "verbose"}, wantErr: "--log-level"},
		{name: "short retention", args: []string{"--retention", "1h"}, wantErr: "at least 24h"},
		{name: "empty namespace", args: []string{"--namespace", ""}, wantErr: "--namespace"},
		{name: "stray argument", args: []string{"start"}, wantErr: "unexpected arguments"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			want := config{
				DBFile:       ".data/temporal/temporal.db",
				IP:           "127.0.0.1",
				Port:         7233,
				HistoryPort:  7234,
				MatchingPort: 7235,
				WorkerPort:   7236,
				UIPort:       8233,
				Namespace:    "default",
				Retention:    30 * 24 * time.Hour,
				LogLevel:     "info",
			}
			tt.want(&want)
			require.Equal(t, want, got)
		})
	}
}

func TestDialHostPort(t *testing.T) {
	tests := []struct {
		ip, want string
	}{
		{"127.0.0.1", "127.0.0.1:7233"},
		{"0.0.0.0", "127.0.0.1:7233"},
		{"::", "[::1]:7233"},
		{"::1", "[::1]:7233"},
	}
	for _, tt := range tests {
		c := config{IP: tt.ip}
		require.Equal(t, tt.want, c.dialHostPort(7233), tt.ip)
	}
}
