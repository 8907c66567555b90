-- Usernames are derived once per person and reserved here, so two concurrent
-- hires never get the same one and a rehire keeps theirs.
CREATE TABLE usernames (
    username    text PRIMARY KEY,
    employee_id text NOT NULL UNIQUE,
    reserved_at timestamptz NOT NULL DEFAULT now()
);
