-- The access ledger: one row per change the system actually made in an
-- application, with why it was made. It is kept here rather than read from
-- Temporal because workflow histories are deleted after the namespace's
-- retention period, while an auditor asks about access granted years ago.
CREATE TABLE access_ledger (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    employee_id    text NOT NULL,
    application    text NOT NULL,
    account        text NOT NULL,
    -- Empty for account actions (created, enabled, disabled, deleted).
    entitlement    text NOT NULL DEFAULT '',
    action         text NOT NULL CHECK (action IN ('created', 'granted', 'revoked', 'disabled', 'enabled', 'deleted')),
    -- Set on a created entry when the account was created disabled (a
    -- future start date).
    disabled       boolean NOT NULL DEFAULT false,
    event          text NOT NULL,
    rules          text[] NOT NULL DEFAULT '{}',
    approval_id    text NOT NULL DEFAULT '',
    approver       text NOT NULL DEFAULT '',
    approved_at    timestamptz,
    note           text NOT NULL DEFAULT '',
    policy_version text NOT NULL DEFAULT '',
    workflow_id    text NOT NULL,
    run_id         text NOT NULL,
    activity_id    text NOT NULL,
    -- The idempotency key: a retried activity (same workflow, run and
    -- activity ID) appends nothing the second time.
    CONSTRAINT access_ledger_activity_key UNIQUE (workflow_id, run_id, activity_id),
    CONSTRAINT access_ledger_entitlement_action CHECK (
        (action IN ('granted', 'revoked')) = (entitlement <> '')),
    CONSTRAINT access_ledger_disabled_on_create CHECK (NOT disabled OR action = 'created')
);

CREATE INDEX access_ledger_employee ON access_ledger (employee_id, seq);
CREATE INDEX access_ledger_entitlement ON access_ledger (application, entitlement);

-- The ledger is evidence: a row once written must never change or vanish,
-- or "who had access and why" could be rewritten after the fact. Privileges
-- alone do not ensure it, because the worker's role owns the table; a
-- trigger refuses UPDATE, DELETE and TRUNCATE for every role, and getting
-- around it takes a deliberate, visible DDL change (ALTER TABLE ... DISABLE
-- TRIGGER or DROP TRIGGER).
CREATE FUNCTION access_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_ledger is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER access_ledger_no_update_delete
    BEFORE UPDATE OR DELETE ON access_ledger
    FOR EACH ROW EXECUTE FUNCTION access_ledger_append_only();

CREATE TRIGGER access_ledger_no_truncate
    BEFORE TRUNCATE ON access_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION access_ledger_append_only();
