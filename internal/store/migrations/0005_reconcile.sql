-- Reconciliation findings (starter reconcile): every difference a run found
-- between an application and what HR and policy say it should hold, keyed
-- by the run's workflow ID. The workflow history carries only counts and a
-- few samples; `starter reconcile --output json` reads the full list here.
CREATE TABLE reconcile_items (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         text NOT NULL,
    application    text NOT NULL,
    class          text NOT NULL CHECK (class IN ('orphan', 'missing', 'excess', 'unmanaged')),
    -- Empty for an account no person owns (unmanaged).
    employee_id    text NOT NULL DEFAULT '',
    -- Empty for a missing account of a person with no username yet.
    account        text NOT NULL DEFAULT '',
    -- Empty when the item is about the account itself.
    entitlement    text NOT NULL DEFAULT '',
    -- What fix mode does: '' (report only), disable, enable, create, grant, revoke.
    action         text NOT NULL DEFAULT ''
                   CHECK (action IN ('', 'disable', 'enable', 'create', 'grant', 'revoke')),
    reason         text NOT NULL DEFAULT '',
    rules          text[] NOT NULL DEFAULT '{}',
    policy_version text NOT NULL DEFAULT '',
    -- Names and e-mail of a person whose account fix mode creates.
    attributes     jsonb,
    status         text NOT NULL DEFAULT 'found' CHECK (status IN ('found', 'fixed', 'failed', 'skipped')),
    outcome        text NOT NULL DEFAULT '',
    found_at       timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    -- A scan resumed from its last heartbeat saves a page again: the key
    -- keeps one row per finding.
    CONSTRAINT reconcile_items_finding UNIQUE (run_id, application, class, employee_id, account, entitlement)
);

CREATE INDEX reconcile_items_run ON reconcile_items (run_id, seq);

-- Scratch of a running scan: the people whose account was seen in an
-- application, so the scan can then list the active people with none (a
-- missing account) without keeping 100,000 accounts in memory. A finished
-- scan deletes its rows.
CREATE TABLE reconcile_seen (
    run_id      text NOT NULL,
    application text NOT NULL,
    employee_id text NOT NULL,
    PRIMARY KEY (run_id, application, employee_id)
);
