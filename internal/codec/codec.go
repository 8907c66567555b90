package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Metadata written on every encrypted payload.
const (
	// EncodingEncrypted is the payload encoding of ciphertext; anything
	// else is passed through by Decode.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID holds the ID of the key that encrypted the payload.
	MetadataKeyID = "encryption-key-id"
)

// Codec is a converter.PayloadCodec that seals each payload (its data and
// metadata, marshalled) with AES-256-GCM under a random nonce. The key ID
// is bound to the ciphertext as additional data, so a payload relabelled
// with another key ID fails to decrypt rather than being misread. A Codec
// is safe for concurrent use.
type Codec struct {
	encryptID string
	aeads     map[string]cipher.AEAD
	ids       []string
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New builds a codec that decrypts with every key and encrypts with the
// key named encryptID; encryptID may be empty when there is only one key.
func New(keys []Key, encryptID string) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("codec: no keys")
	}
	c := &Codec{aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("codec: key ID %q appears twice", k.ID)
		}
		if len(k.material) != KeySize {
			return nil, fmt.Errorf("codec: key %q has %d bytes, want %d", k.ID, len(k.material), KeySize)
		}
		block, err := aes.NewCipher(k.material)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
		c.ids = append(c.ids, k.ID)
	}
	slices.Sort(c.ids)
	switch {
	case encryptID == "" && len(keys) == 1:
		encryptID = keys[0].ID
	case encryptID == "":
		return nil, fmt.Errorf("codec: %d keys (%s) and none named to encrypt with", len(keys), strings.Join(c.ids, ", "))
	case c.aeads[encryptID] == nil:
		return nil, fmt.Errorf("codec: key ID %q is not among the keys (%s)", encryptID, strings.Join(c.ids, ", "))
	}
	c.encryptID = encryptID
	return c, nil
}

// KeyID is the ID of the key new payloads are encrypted with.
func (c *Codec) KeyID() string { return c.encryptID }

// Encode encrypts each payload with the encrypting key. A payload that is
// already encrypted is kept as it is, so encoding twice is harmless.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.encryptID]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if Encrypted(p) {
			out[i] = p
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(c.encryptID),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(c.encryptID)),
		}
	}
	return out, nil
}

// Decode decrypts encrypted payloads with the key their metadata names and
// passes every other payload through unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !Encrypted(p) {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead := c.aeads[id]
		switch {
		case id == "":
			return nil, errors.New("codec: encrypted payload without a key ID")
		case aead == nil:
			return nil, fmt.Errorf("codec: payload was encrypted with key %q, which is not among the configured keys (%s): add it to the key list to read it",
				id, strings.Join(c.ids, ", "))
		case len(p.GetData()) < aead.NonceSize()+aead.Overhead():
			return nil, fmt.Errorf("codec: encrypted payload of %d bytes is too short (key %q)", len(p.GetData()), id)
		}
		nonce, sealed := p.GetData()[:aead.NonceSize()], p.GetData()[aead.NonceSize():]
		plain, err := aead.Open(nil, nonce, sealed, []byte(id))
		if err != nil {
			return nil, fmt.Errorf("codec: cannot decrypt payload with key %q: the key is wrong or the payload was altered", id)
		}
		dp := &commonpb.Payload{}
		if err := proto.Unmarshal(plain, dp); err != nil {
			return nil, fmt.Errorf("codec: decrypted payload (key %q) does not parse: %w", id, err)
		}
		out[i] = dp
	}
	return out, nil
}

// Encrypted reports whether p is ciphertext written by a Codec.
func Encrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[converter.MetadataEncoding]) == EncodingEncrypted
}
