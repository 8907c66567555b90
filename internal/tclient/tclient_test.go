package tclient

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/codec"
	"github.com/provisio-dev/provisio/internal/config"
)

func TestCodecDialOption(t *testing.T) {
	k1, err := codec.GenerateKey("k1")
	require.NoError(t, err)
	k2, err := codec.GenerateKey("k2")
	require.NoError(t, err)
	tests := []struct {
		name    string
		cc      config.Codec
		wantErr string
	}{
		{"one key", config.Codec{Keys: []codec.Key{k1}}, ""},
		{"rotation", config.Codec{Keys: []codec.Key{k1, k2}, KeyID: "k2"}, ""},
		{"no keys", config.Codec{}, "payload codec: payload encryption is off"},
		{"unknown key ID", config.Codec{Keys: []codec.Key{k1}, KeyID: "k9"}, `payload codec: codec: key ID "k9" is not among the keys (k1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt, err := CodecDialOption(tt.cc)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Nil(t, opt)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, opt)
		})
	}
}

func TestDialRefusesABadCodecBeforeDialling(t *testing.T) {
	cfg := config.Config{
		// Nothing listens here: the codec error must come first.
		TemporalAddress: "127.0.0.1:1", TemporalNamespace: "default",
		Codec: config.Codec{Keys: []codec.Key{{ID: "k0"}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg, nil)
	require.Error(t, err)
	assert.Nil(t, c)
	assert.Contains(t, err.Error(), `payload codec: codec: key "k0" has 0 bytes`)
	assert.NotContains(t, err.Error(), "cannot reach Temporal")
}
