-- The last synced state of each HR feed (`starter sync --source NAME`): one
-- row per person and feed, so the next export can be compared with it and
-- only the changes start workflows. A person is never deleted here: a row
-- that left the export stays as status 'removed', so the person remains
-- known (moves, terminations and escalations can still name them).
CREATE TABLE roster_state (
    source      text        NOT NULL CHECK (source <> ''),
    employee_id text        NOT NULL,
    -- record is the hr.Person as last synced (JSON field names of hr.Person).
    record      jsonb       NOT NULL,
    -- hash is the SHA-256 of the record's canonical JSON: equal hash, no change.
    hash        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('active', 'terminated', 'removed')),
    -- line is the export line the record came from (of the last export that
    -- held it, for a removed person).
    line        integer     NOT NULL CHECK (line >= 0),
    synced_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, employee_id)
);

-- Known() and the worker's directory look a person up in every feed.
CREATE INDEX roster_state_employee ON roster_state (employee_id);
