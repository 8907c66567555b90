package codec

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// keyIDRe is what a key ID may look like: short, printable, and free of
// the separators of the key list.
var keyIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Key is one AES-256 key and the ID stored with every payload it
// encrypts. Its String and GoString show the ID only, so a Key that ends
// up in a log line or a test failure never shows the key itself.
type Key struct {
	// ID names the key in payload metadata; it is not secret.
	ID       string
	material []byte
}

// NewKey checks the ID and the length of the key material.
func NewKey(id string, material []byte) (Key, error) {
	if !keyIDRe.MatchString(id) {
		return Key{}, fmt.Errorf("key ID %q: want 1 to 64 letters, digits, '.', '_' or '-'", id)
	}
	if len(material) != KeySize {
		return Key{}, fmt.Errorf("key %q has %d bytes, want %d (make one with `openssl rand -base64 32`)", id, len(material), KeySize)
	}
	return Key{ID: id, material: append([]byte(nil), material...)}, nil
}

// GenerateKey makes a new random key with the given ID.
func GenerateKey(id string) (Key, error) {
	material := make([]byte, KeySize)
	if _, err := rand.Read(material); err != nil {
		return Key{}, fmt.Errorf("generate key %q: %w", id, err)
	}
	return NewKey(id, material)
}

// String shows the key's ID, never its material.
func (k Key) String() string { return "codec.Key(" + k.ID + ")" }

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// ParseKeys reads a key list: entries "ID:BASE64KEY" separated by commas
// or newlines (blank lines and lines starting with # are skipped, so a key
// file can carry comments). Each key must decode (standard base64) to
// exactly 32 bytes and IDs must be unique. Errors name the entry by
// position and ID, never by its key.
func ParseKeys(spec string) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	n := 0
	for _, line := range strings.Split(spec, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, entry := range strings.Split(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			n++
			id, encoded, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, fmt.Errorf("entry %d: want ID:BASE64KEY", n)
			}
			id = strings.TrimSpace(id)
			material, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
			if err != nil {
				return nil, fmt.Errorf("entry %d (key %q): the key is not valid standard base64 (make one with `openssl rand -base64 32`)", n, id)
			}
			k, err := NewKey(id, material)
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", n, err)
			}
			if seen[id] {
				return nil, fmt.Errorf("entry %d: key ID %q appears twice", n, id)
			}
			seen[id] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no key found: want ID:BASE64KEY entries separated by commas")
	}
	return keys, nil
}

// FormatKeys writes keys in the form ParseKeys reads. The result holds
// the keys themselves: pass it only to a process that needs them (the
// codec server, a worker), never to a log.
func FormatKeys(keys []Key) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.ID + ":" + base64.StdEncoding.EncodeToString(k.material)
	}
	return strings.Join(parts, ",")
}
