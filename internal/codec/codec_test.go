package codec

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// testKey is a key whose bytes are all b, so tests can spell them out.
func testKey(t *testing.T, id string, b byte) Key {
	t.Helper()
	k, err := NewKey(id, bytes.Repeat([]byte{b}, KeySize))
	require.NoError(t, err)
	return k
}

func b64(b byte, n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, n)) }

// person is a payload the way the SDK writes a workflow input.
func person(t *testing.T) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{
		"givenName": "Ada", "familyName": "Lovelace", "email": "ada.lovelace@example.com",
	})
	require.NoError(t, err)
	return p
}

func mustCodec(t *testing.T, id string, keys ...Key) *Codec {
	t.Helper()
	c, err := New(keys, id)
	require.NoError(t, err)
	return c
}

func TestRoundTrip(t *testing.T) {
	k1 := testKey(t, "k1", 1)
	c := mustCodec(t, "", k1)
	nilPayload, err := converter.GetDefaultDataConverter().ToPayload(nil)
	require.NoError(t, err)
	tests := []struct {
		name string
		in   *commonpb.Payload
	}{
		{"json person", person(t)},
		{"nil value", nilPayload},
		{"empty data", &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}}},
		{"large", &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: bytes.Repeat([]byte("x"), 1<<20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := c.Encode([]*commonpb.Payload{tt.in})
			require.NoError(t, err)
			require.Len(t, enc, 1)
			assert.Equal(t, EncodingEncrypted, string(enc[0].Metadata["encoding"]))
			assert.Equal(t, "k1", string(enc[0].Metadata[MetadataKeyID]))
			assert.Len(t, enc[0].Metadata, 2, "the original metadata is inside the ciphertext")
			assert.NotContains(t, string(enc[0].Data), "Lovelace")
			assert.NotContains(t, string(enc[0].Data), "json/plain")
			dec, err := c.Decode(enc)
			require.NoError(t, err)
			require.Len(t, dec, 1)
			assert.True(t, proto.Equal(tt.in, dec[0]), "got %v", dec[0])
		})
	}
}

func TestEncodeUsesAFreshNonceEachTime(t *testing.T) {
	c := mustCodec(t, "", testKey(t, "k1", 1))
	p := person(t)
	enc, err := c.Encode([]*commonpb.Payload{p, p})
	require.NoError(t, err)
	assert.NotEqual(t, enc[0].Data, enc[1].Data, "the same plaintext twice gives different ciphertexts")
	again, err := c.Encode(enc)
	require.NoError(t, err)
	assert.Equal(t, enc, again, "encoding an encrypted payload again changes nothing")
}

func TestRotation(t *testing.T) {
	old, cur := testKey(t, "2025-q4", 1), testKey(t, "2026-q1", 2)
	before := mustCodec(t, "", old)
	after := mustCodec(t, "2026-q1", old, cur)

	encOld, err := before.Encode([]*commonpb.Payload{person(t)})
	require.NoError(t, err)
	encNew, err := after.Encode([]*commonpb.Payload{person(t)})
	require.NoError(t, err)
	assert.Equal(t, "2026-q1", string(encNew[0].Metadata[MetadataKeyID]), "the new key encrypts")

	// The rotated codec reads both; the old one reads only its own.
	dec, err := after.Decode([]*commonpb.Payload{encOld[0], encNew[0]})
	require.NoError(t, err)
	assert.True(t, proto.Equal(person(t), dec[0]))
	assert.True(t, proto.Equal(person(t), dec[1]))
	_, err = before.Decode(encNew)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `encrypted with key "2026-q1", which is not among the configured keys (2025-q4)`)
}

func TestDecodeFailures(t *testing.T) {
	k1 := testKey(t, "k1", 1)
	c := mustCodec(t, "", k1)
	enc, err := c.Encode([]*commonpb.Payload{person(t)})
	require.NoError(t, err)
	good := enc[0]
	modified := func(f func(p *commonpb.Payload)) *commonpb.Payload {
		p := proto.Clone(good).(*commonpb.Payload)
		f(p)
		return p
	}
	tests := []struct {
		name  string
		codec *Codec
		in    *commonpb.Payload
		want  string
	}{
		{"wrong key under the same ID", mustCodec(t, "", testKey(t, "k1", 9)), good, `cannot decrypt payload with key "k1": the key is wrong or the payload was altered`},
		{"unknown key ID", mustCodec(t, "", testKey(t, "k2", 1)), good, `encrypted with key "k1", which is not among the configured keys (k2)`},
		{"flipped ciphertext bit", c, modified(func(p *commonpb.Payload) { p.Data[len(p.Data)/2] ^= 1 }), "the key is wrong or the payload was altered"},
		{"flipped nonce bit", c, modified(func(p *commonpb.Payload) { p.Data[0] ^= 1 }), "the key is wrong or the payload was altered"},
		{"truncated", c, modified(func(p *commonpb.Payload) { p.Data = p.Data[:10] }), "too short"},
		{"relabelled to another known key", mustCodec(t, "k1", k1, testKey(t, "k2", 1)),
			modified(func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("k2") }), `cannot decrypt payload with key "k2"`},
		{"no key ID", c, modified(func(p *commonpb.Payload) { delete(p.Metadata, MetadataKeyID) }), "without a key ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.codec.Decode([]*commonpb.Payload{tt.in})
			require.Error(t, err)
			assert.Nil(t, out)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "Lovelace")
		})
	}
}

func TestDecodePassesPlainPayloadsThrough(t *testing.T) {
	c := mustCodec(t, "", testKey(t, "k1", 1))
	plain := []*commonpb.Payload{
		person(t),
		{Metadata: map[string][]byte{"encoding": []byte("binary/null")}},
		{Metadata: map[string][]byte{"encoding": []byte("binary/zlib")}, Data: []byte{1, 2, 3}},
		{},
	}
	out, err := c.Decode(plain)
	require.NoError(t, err)
	require.Len(t, out, len(plain))
	for i := range plain {
		assert.Same(t, plain[i], out[i], "payload %d is passed through as it is", i)
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		wantIDs []string
		wantErr string
	}{
		{name: "one", spec: "k1:" + b64(1, 32), wantIDs: []string{"k1"}},
		{name: "two with spaces", spec: " k1 : " + b64(1, 32) + " , k2:" + b64(2, 32) + " ,", wantIDs: []string{"k1", "k2"}},
		{name: "file with comments", spec: "# rotated 2026-01\nold:" + b64(1, 32) + "\n\nnew:" + b64(2, 32) + "\n", wantIDs: []string{"old", "new"}},
		{name: "key of 16 bytes", spec: "k1:" + b64(1, 16), wantErr: `entry 1: key "k1" has 16 bytes, want 32`},
		{name: "key of 33 bytes", spec: "k1:" + b64(1, 32) + ",k2:" + b64(1, 33), wantErr: `entry 2: key "k2" has 33 bytes, want 32`},
		{name: "bad base64", spec: "k1:not*base64!", wantErr: `entry 1 (key "k1"): the key is not valid standard base64`},
		{name: "url-safe base64", spec: "k1:" + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(append(bytes.Repeat([]byte{0xfb}, 31), 0xff))), wantErr: "not valid standard base64"},
		{name: "duplicate IDs", spec: "k1:" + b64(1, 32) + ",k1:" + b64(2, 32), wantErr: `entry 2: key ID "k1" appears twice`},
		{name: "no colon", spec: b64(1, 32), wantErr: "entry 1: want ID:BASE64KEY"},
		{name: "empty ID", spec: ":" + b64(1, 32), wantErr: `key ID ""`},
		{name: "ID with a space", spec: "my key:" + b64(1, 32), wantErr: `key ID "my key"`},
		{name: "nothing", spec: " , \n# only a comment\n", wantErr: "no key found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys(tt.spec)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), b64(1, 32), "the key is never repeated")
				return
			}
			require.NoError(t, err)
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID)
			}
			assert.Equal(t, tt.wantIDs, ids)
			again, err := ParseKeys(FormatKeys(keys))
			require.NoError(t, err)
			assert.Equal(t, keys, again, "FormatKeys writes what ParseKeys reads")
		})
	}
}

func TestNewRefusesBadKeyRings(t *testing.T) {
	k1, k2 := testKey(t, "k1", 1), testKey(t, "k2", 2)
	tests := []struct {
		name    string
		keys    []Key
		id      string
		wantErr string
	}{
		{"no keys", nil, "", "no keys"},
		{"encrypting key not among the keys", []Key{k1, k2}, "k3", `key ID "k3" is not among the keys (k1, k2)`},
		{"several keys, none named", []Key{k1, k2}, "", "2 keys (k1, k2) and none named to encrypt with"},
		{"duplicate IDs", []Key{k1, k1}, "k1", `key ID "k1" appears twice`},
		{"zero key", []Key{{ID: "k0"}}, "", `key "k0" has 0 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.keys, tt.id)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
	c, err := New([]Key{k1}, "")
	require.NoError(t, err)
	assert.Equal(t, "k1", c.KeyID(), "a single key encrypts without being named")
}

func TestKeyNeverPrintsItsMaterial(t *testing.T) {
	k, err := GenerateKey("k1")
	require.NoError(t, err)
	secret := FormatKeys([]Key{k})[len("k1:"):]
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{k, []Key{k}, struct{ Keys []Key }{[]Key{k}}} {
			s := fmt.Sprintf(format, v)
			assert.Contains(t, s, "k1")
			assert.NotContains(t, s, secret)
			assert.NotContains(t, s, fmt.Sprint(k.material[:8])[1:])
		}
	}
	other, err := GenerateKey("k2")
	require.NoError(t, err)
	assert.NotEqual(t, FormatKeys([]Key{k})[3:], FormatKeys([]Key{other})[3:], "generated keys are random")
}
