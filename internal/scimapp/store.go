package scimapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults for Options.
const (
	DefaultDatabase = "scimdemo"
	DefaultSchema   = "scimdemo"
)

// SeedGroups returns the groups created on the first start of an empty
// store, so a fresh demo has entitlements to grant.
func SeedGroups() []string {
	return []string{"engineering", "sales", "support", "finance-admins", "all-staff"}
}

// Options says where the store keeps its data.
type Options struct {
	// URL is a PostgreSQL connection URL (PG_URL). Its own database is only
	// used to create Database when that is absent.
	URL string
	// Database holds the app's data; DefaultDatabase when empty.
	Database string
	// Schema is the schema inside Database holding the tables;
	// DefaultSchema when empty. Tests use a unique schema each.
	Schema string
}

// Store keeps users, groups and memberships in PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// maxNameLen caps userName and group displayName so a unique-index entry
// always fits (PostgreSQL refuses btree entries over about 2.7 kB).
const maxNameLen = 1024

// Open connects to PostgreSQL, creates the database, schema and tables when
// absent and seeds the default groups on first start.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Database == "" {
		opts.Database = DefaultDatabase
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// The parse error may quote the URL, which may hold a password.
		return nil, errors.New("scimapp: PG_URL is not a valid PostgreSQL URL")
	}
	if err := ensureDatabase(ctx, cfg.ConnConfig, opts.Database); err != nil {
		return nil, err
	}
	cfg.ConnConfig.Database = opts.Database
	if err := ensureSchema(ctx, cfg.ConnConfig, opts.Schema); err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("scimapp: connect to database %q: %w", opts.Database, err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the connection pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// CanLogin is the demo app's login rule, which SCIM itself does not define:
// a user may log in when it exists and is active. userName must match
// exactly.
func (s *Store) CanLogin(ctx context.Context, userName string) (bool, error) {
	var active bool
	err := s.pool.QueryRow(ctx, `SELECT active FROM users WHERE user_name = $1`, userName).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("scimapp: read user: %w", err)
	}
	return active, nil
}

func ensureDatabase(ctx context.Context, base *pgx.ConnConfig, name string) error {
	if base.Database == name {
		return nil
	}
	conn, err := pgx.ConnectConfig(ctx, base.Copy())
	if err != nil {
		return fmt.Errorf("scimapp: connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("scimapp: look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize())
	if pgCode(err) == "42P04" { // duplicate_database: another process won the race
		return nil
	}
	if err != nil {
		return fmt.Errorf("scimapp: create database %q: %w", name, err)
	}
	return nil
}

func ensureSchema(ctx context.Context, cfg *pgx.ConnConfig, schema string) error {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return fmt.Errorf("scimapp: connect to database %q: %w", cfg.Database, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize())
	if err != nil && pgCode(err) != "23505" && pgCode(err) != "42P06" { // lost a creation race
		return fmt.Errorf("scimapp: create schema %q: %w", schema, err)
	}
	return nil
}

// The tables live in the schema on the pool's search_path. userName and
// displayName are unique ignoring case because SCIM declares both caseExact
// false: "Ada" and "ada" are the same account.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS users (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	user_name   text NOT NULL CHECK (user_name <> ''),
	active      boolean NOT NULL DEFAULT true,
	external_id text,
	attributes  jsonb NOT NULL DEFAULT '{}',
	created     timestamptz NOT NULL DEFAULT now(),
	modified    timestamptz NOT NULL DEFAULT now(),
	version     bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS users_user_name_key ON users (lower(user_name));
CREATE TABLE IF NOT EXISTS groups (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	display_name text NOT NULL CHECK (display_name <> ''),
	external_id  text,
	created      timestamptz NOT NULL DEFAULT now(),
	modified     timestamptz NOT NULL DEFAULT now(),
	version      bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS groups_display_name_key ON groups (lower(display_name));
CREATE TABLE IF NOT EXISTS members (
	group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
	user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (group_id, user_id)
);
CREATE INDEX IF NOT EXISTS members_user_id ON members (user_id);
CREATE TABLE IF NOT EXISTS app_meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);`

func (s *Store) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Serialise concurrent starts: CREATE ... IF NOT EXISTS races.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('scimdemo:' || current_schema()))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schemaSQL); err != nil {
			return err
		}
		// Seed only on the very first start, so a group an operator
		// deleted stays deleted.
		tag, err := tx.Exec(ctx, `INSERT INTO app_meta (key, value) VALUES ('seeded', now()::text) ON CONFLICT DO NOTHING`)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		for _, g := range SeedGroups() {
			if _, err := tx.Exec(ctx, `INSERT INTO groups (display_name) VALUES ($1) ON CONFLICT DO NOTHING`, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scimapp: create tables: %w", err)
	}
	return nil
}

// ref names a related resource: a group of a user or a member of a group.
type ref struct {
	ID      string
	Display string
}

// userRow is a user as stored: the columns the app queries on, plus every
// other attribute (name, displayName, emails, the enterprise extension) as a
// JSON document keyed by canonical attribute name.
type userRow struct {
	ID         string
	UserName   string
	Active     bool
	ExternalID *string
	Attrs      map[string]any
	Created    time.Time
	Modified   time.Time
	Version    int64
	Groups     []ref
}

// groupRow is a group as stored, with its members.
type groupRow struct {
	ID          string
	DisplayName string
	ExternalID  *string
	Created     time.Time
	Modified    time.Time
	Version     int64
	Members     []ref
}

// where is one fixed SQL condition with its single argument. The condition
// text never holds input; the argument is always bound.
type where struct {
	cond string
	arg  any
}

// impossible reports whether no row can match: PostgreSQL text cannot hold
// NUL, so comparing with a value holding one would be an error, not a miss.
func (w *where) impossible() bool {
	if w == nil {
		return false
	}
	s, ok := w.arg.(string)
	return ok && strings.ContainsRune(s, 0)
}

const userCols = `id::text, user_name, active, external_id, attributes, created, modified, version`

func scanUser(row pgx.Row) (userRow, error) {
	var u userRow
	var attrs []byte
	err := row.Scan(&u.ID, &u.UserName, &u.Active, &u.ExternalID, &attrs, &u.Created, &u.Modified, &u.Version)
	if err != nil {
		return u, err
	}
	if err := json.Unmarshal(attrs, &u.Attrs); err != nil {
		return u, fmt.Errorf("decode attributes of user %s: %w", u.ID, err)
	}
	if u.Attrs == nil {
		u.Attrs = map[string]any{}
	}
	return u, nil
}

const groupCols = `id::text, display_name, external_id, created, modified, version`

func scanGroup(row pgx.Row) (groupRow, error) {
	var g groupRow
	err := row.Scan(&g.ID, &g.DisplayName, &g.ExternalID, &g.Created, &g.Modified, &g.Version)
	return g, err
}

// getUser reads one user with its groups; a missing or malformed id is a
// SCIM 404.
func (s *Store) getUser(ctx context.Context, id string) (userRow, error) {
	if !isUUID(id) {
		return userRow{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return userRow{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	if err != nil {
		return userRow{}, err
	}
	users := []userRow{u}
	if err := s.loadGroups(ctx, users); err != nil {
		return userRow{}, err
	}
	return users[0], nil
}

// listUsers returns one page of the users matching w (all when w is nil) in
// creation order, and how many match in all.
func (s *Store) listUsers(ctx context.Context, w *where, offset, limit int) ([]userRow, int, error) {
	if w.impossible() {
		return []userRow{}, 0, nil
	}
	cond, args := "", []any{}
	if w != nil {
		cond, args = " WHERE "+w.cond, []any{w.arg}
	}
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || offset >= total {
		return []userRow{}, total, nil
	}
	q := fmt.Sprintf(`SELECT %s FROM users%s ORDER BY created, id OFFSET %d LIMIT %d`, userCols, cond, offset, limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, 0, err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (userRow, error) { return scanUser(r) })
	if err != nil {
		return nil, 0, err
	}
	return users, total, s.loadGroups(ctx, users)
}

// loadGroups fills the Groups of each user with one query.
func (s *Store) loadGroups(ctx context.Context, users []userRow) error {
	if len(users) == 0 {
		return nil
	}
	ids := make([]string, len(users))
	index := make(map[string]int, len(users))
	for i, u := range users {
		ids[i] = u.ID
		index[u.ID] = i
		users[i].Groups = []ref{}
	}
	rows, err := s.pool.Query(ctx, `
		SELECT m.user_id::text, g.id::text, g.display_name
		FROM members m JOIN groups g ON g.id = m.group_id
		WHERE m.user_id = ANY($1::uuid[])
		ORDER BY lower(g.display_name), g.id`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var uid string
		var g ref
		if err := rows.Scan(&uid, &g.ID, &g.Display); err != nil {
			return err
		}
		i := index[uid]
		users[i].Groups = append(users[i].Groups, g)
	}
	return rows.Err()
}

// createUser inserts u and returns it as stored.
func (s *Store) createUser(ctx context.Context, u userRow) (userRow, error) {
	attrs, err := json.Marshal(u.Attrs)
	if err != nil {
		return userRow{}, err
	}
	row, err := scanUser(s.pool.QueryRow(ctx, `
		INSERT INTO users (user_name, active, external_id, attributes)
		VALUES ($1, $2, $3, $4) RETURNING `+userCols,
		u.UserName, u.Active, u.ExternalID, attrs))
	if err != nil {
		return userRow{}, storeError(err)
	}
	row.Groups = []ref{}
	return row, nil
}

// updateUser reads the user id under a row lock, lets edit change its
// document and writes the result back when it differs.
func (s *Store) updateUser(ctx context.Context, id string, edit func(doc map[string]any) error) (userRow, error) {
	if !isUUID(id) {
		return userRow{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return scimerrors.ScimErrorResourceNotFound(id)
		}
		if err != nil {
			return err
		}
		doc := u.document()
		before, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		if err := edit(doc); err != nil {
			return err
		}
		if after, err := json.Marshal(doc); err != nil || string(after) == string(before) {
			return err
		}
		next, err := userFromDocument(doc)
		if err != nil {
			return err
		}
		attrs, err := json.Marshal(next.Attrs)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE users SET user_name = $2, active = $3, external_id = $4, attributes = $5,
				modified = now(), version = version + 1
			WHERE id = $1`, id, next.UserName, next.Active, next.ExternalID, attrs)
		return storeError(err)
	})
	if err != nil {
		return userRow{}, err
	}
	return s.getUser(ctx, id)
}

// deleteUser removes the user and, through the foreign key, its
// memberships.
func (s *Store) deleteUser(ctx context.Context, id string) error {
	if !isUUID(id) {
		return scimerrors.ScimErrorResourceNotFound(id)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return scimerrors.ScimErrorResourceNotFound(id)
	}
	return nil
}

// getGroup reads one group with its members.
func (s *Store) getGroup(ctx context.Context, id string) (groupRow, error) {
	if !isUUID(id) {
		return groupRow{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	g, err := scanGroup(s.pool.QueryRow(ctx, `SELECT `+groupCols+` FROM groups WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return groupRow{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	if err != nil {
		return groupRow{}, err
	}
	groups := []groupRow{g}
	if err := s.loadMembers(ctx, groups); err != nil {
		return groupRow{}, err
	}
	return groups[0], nil
}

// listGroups returns one page of the groups matching w (all when nil) in
// creation order, and how many match in all.
func (s *Store) listGroups(ctx context.Context, w *where, offset, limit int) ([]groupRow, int, error) {
	if w.impossible() {
		return []groupRow{}, 0, nil
	}
	cond, args := "", []any{}
	if w != nil {
		cond, args = " WHERE "+w.cond, []any{w.arg}
	}
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM groups`+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || offset >= total {
		return []groupRow{}, total, nil
	}
	q := fmt.Sprintf(`SELECT %s FROM groups%s ORDER BY created, id OFFSET %d LIMIT %d`, groupCols, cond, offset, limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, 0, err
	}
	groups, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (groupRow, error) { return scanGroup(r) })
	if err != nil {
		return nil, 0, err
	}
	return groups, total, s.loadMembers(ctx, groups)
}

// loadMembers fills the Members of each group with one query; a member's
// display is the user's displayName, else its userName.
func (s *Store) loadMembers(ctx context.Context, groups []groupRow) error {
	if len(groups) == 0 {
		return nil
	}
	ids := make([]string, len(groups))
	index := make(map[string]int, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
		index[g.ID] = i
		groups[i].Members = []ref{}
	}
	rows, err := s.pool.Query(ctx, `
		SELECT m.group_id::text, u.id::text, coalesce(nullif(u.attributes->>'displayName', ''), u.user_name)
		FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.group_id = ANY($1::uuid[])
		ORDER BY lower(u.user_name), u.id`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var gid string
		var m ref
		if err := rows.Scan(&gid, &m.ID, &m.Display); err != nil {
			return err
		}
		i := index[gid]
		groups[i].Members = append(groups[i].Members, m)
	}
	return rows.Err()
}

// createGroup inserts a group with its members in one transaction.
func (s *Store) createGroup(ctx context.Context, g groupRow, members []string) (groupRow, error) {
	var id string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO groups (display_name, external_id) VALUES ($1, $2) RETURNING id::text`,
			g.DisplayName, g.ExternalID).Scan(&id)
		if err != nil {
			return storeError(err)
		}
		return setMembers(ctx, tx, id, nil, members)
	})
	if err != nil {
		return groupRow{}, err
	}
	return s.getGroup(ctx, id)
}

// updateGroup reads the group id under a row lock, lets edit change its
// document and writes back only what changed: the group's own columns, and
// the members added or removed. Membership is never rewritten wholesale, so
// concurrent single-member changes to one group all survive.
func (s *Store) updateGroup(ctx context.Context, id string, edit func(doc map[string]any) error) (groupRow, error) {
	if !isUUID(id) {
		return groupRow{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		g, err := scanGroup(tx.QueryRow(ctx, `SELECT `+groupCols+` FROM groups WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return scimerrors.ScimErrorResourceNotFound(id)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT user_id::text FROM members WHERE group_id = $1`, id)
		if err != nil {
			return err
		}
		current, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, m := range current {
			g.Members = append(g.Members, ref{ID: m})
		}
		doc := g.document()
		if err := edit(doc); err != nil {
			return err
		}
		next, members, err := groupFromDocument(doc)
		if err != nil {
			return err
		}
		if next.DisplayName != g.DisplayName || !equalPtr(next.ExternalID, g.ExternalID) {
			_, err := tx.Exec(ctx, `UPDATE groups SET display_name = $2, external_id = $3, modified = now(), version = version + 1
				WHERE id = $1`, id, next.DisplayName, next.ExternalID)
			if err != nil {
				return storeError(err)
			}
		}
		return setMembers(ctx, tx, id, current, members)
	})
	if err != nil {
		return groupRow{}, err
	}
	return s.getGroup(ctx, id)
}

// setMembers moves the membership of group from current to want by adding
// and removing only the difference. Every new member must be an existing
// user: nested groups are not supported.
func setMembers(ctx context.Context, tx pgx.Tx, group string, current, want []string) error {
	have := make(map[string]bool, len(current))
	for _, m := range current {
		have[m] = true
	}
	wanted := make(map[string]bool, len(want))
	var add, remove []string
	for _, m := range want {
		wanted[m] = true
		if !have[m] {
			add = append(add, m)
		}
	}
	for _, m := range current {
		if !wanted[m] {
			remove = append(remove, m)
		}
	}
	if len(add) > 0 {
		rows, err := tx.Query(ctx, `SELECT id::text FROM users WHERE id = ANY($1::uuid[])`, add)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		known := make(map[string]bool, len(found))
		for _, id := range found {
			known[id] = true
		}
		for _, id := range add {
			if !known[id] {
				return scimerrors.ScimErrorBadRequest(fmt.Sprintf("member %s is not a user of this application (nested groups are not supported)", id))
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO members (group_id, user_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`, group, add)
		if err != nil {
			return storeError(err)
		}
	}
	if len(remove) > 0 {
		_, err := tx.Exec(ctx, `DELETE FROM members WHERE group_id = $1 AND user_id = ANY($2::uuid[])`, group, remove)
		if err != nil {
			return err
		}
	}
	if len(add)+len(remove) > 0 {
		_, err := tx.Exec(ctx, `UPDATE groups SET modified = now(), version = version + 1 WHERE id = $1`, group)
		return err
	}
	return nil
}

// deleteGroup removes the group and its memberships.
func (s *Store) deleteGroup(ctx context.Context, id string) error {
	if !isUUID(id) {
		return scimerrors.ScimErrorResourceNotFound(id)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM groups WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return scimerrors.ScimErrorResourceNotFound(id)
	}
	return nil
}

// storeError turns constraint violations into the SCIM errors a client can
// act on and passes anything else through.
func storeError(err error) error {
	switch pgCode(err) {
	case "":
		return err
	case "23505": // unique_violation
		return scimerrors.ScimErrorUniqueness
	case "23503", "23514", "22021", "22P05": // foreign key, check, bad encoding
		return scimerrors.ScimErrorInvalidValue
	case "54000": // program_limit_exceeded: value too large for an index
		return scimerrors.ScimErrorBadRequest("a value is too long")
	default:
		return err
	}
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// isUUID reports whether id is a canonical lowercase UUID, the only form
// the app hands out; anything else cannot name a resource.
func isUUID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == strings.ToLower(id)
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
