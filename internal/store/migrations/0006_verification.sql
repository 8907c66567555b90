-- Verified revocation: a disable, revoke or delete is recorded only after a
-- read-back of the application showed it in effect, so the ledger can show
-- an auditor not just that access removal was asked for but that it held.
-- requested_at is when the workflow first asked, verified_at when the
-- read-back confirmed it, verified_by how: 'read-back', or 'fallback-delete'
-- when the application ignored a disable and the account was deleted
-- instead. Rows written before this migration keep NULL and '' (no
-- verification): the ledger is append-only, and inventing a verification
-- for them would be false evidence.
--
-- The checks mirror ledger.Entry.Validate, for rows written by anything
-- but Store.Record. Adding columns and constraints is DDL, so the
-- append-only trigger (0002) does not fire, and every existing row passes
-- the checks as it stands.
ALTER TABLE access_ledger
    ADD COLUMN requested_at timestamptz,
    ADD COLUMN verified_at  timestamptz,
    ADD COLUMN verified_by  text NOT NULL DEFAULT '',
    ADD CONSTRAINT access_ledger_verified_by CHECK (
        verified_by IN ('', 'read-back', 'fallback-delete')),
    ADD CONSTRAINT access_ledger_verified_together CHECK (
        (verified_by = '') = (verified_at IS NULL)),
    -- Only taking access away is verified.
    ADD CONSTRAINT access_ledger_verified_revocation CHECK (
        (requested_at IS NULL AND verified_by = '')
        OR action IN ('disabled', 'revoked', 'deleted')),
    ADD CONSTRAINT access_ledger_fallback_delete CHECK (
        verified_by <> 'fallback-delete' OR action = 'deleted');
