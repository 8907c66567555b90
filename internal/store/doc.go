// Package store owns the project's own PostgreSQL schema (username
// reservations, and later the access ledger and roster state): the embedded,
// numbered migrations and the function that applies them at worker start.
// Connector target databases are not managed here.
package store
