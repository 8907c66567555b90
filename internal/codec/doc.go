// Package codec encrypts Temporal payloads (workflow and activity inputs,
// results, memos, headers, failure details) with AES-256-GCM before they
// leave the process, so the Temporal server and its database hold only
// ciphertext, and decrypts them on the way back.
//
// Keys carry an ID written next to each ciphertext: one key encrypts, every
// configured key decrypts, so a key is rotated by adding a new one, making
// it the encrypting key and keeping the old one until no run needs it.
// Payloads that are not encrypted pass through unchanged, so histories
// written before encryption was turned on stay readable.
//
// What lives here: the key ring, the PayloadCodec and the HTTP codec server
// the Temporal UI calls to show decrypted payloads. What must not: reading
// the environment (internal/config does) or dialling Temporal
// (internal/tclient does).
package codec
