-- Signatures of the webhook requests accepted in the last minutes. A
-- request whose signature is here is a replay and is refused, by every
-- instance and after restarts. Rows expire once their timestamp is too old
-- to pass the signature check anyway, and are pruned.
CREATE TABLE webhook_signatures (
    signature  text PRIMARY KEY,
    seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX webhook_signatures_expires_at ON webhook_signatures (expires_at);
