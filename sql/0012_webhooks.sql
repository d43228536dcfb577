-- Signed webhooks (API.md /v1/webhook_endpoints, DESIGN §3a), fed from the
-- outbox of the same region (0011_events.sql) by ledgerd's webhook worker
-- (api/webhookd.c): the dispatcher turns each event into one delivery per
-- matching endpoint, in the transaction that advances its event_consumers
-- position ("webhooks"), so a crash re-reads events and never skips one; the
-- sender posts them, Standard Webhooks signed, at least once, with backoff.
--
-- An endpoint lives in the region whose events it receives (its id is an id
-- of that region, like an account's): the dispatcher never crosses regions.
CREATE TABLE webhook_endpoints (
    id            uuid PRIMARY KEY,
    owner         owner_name NOT NULL,
    -- Made by an admin principal: it receives every event of the region, not
    -- only the events its owner is one of the owners of.
    owner_is_admin boolean NOT NULL DEFAULT false,
    url           text NOT NULL CHECK (length(url) BETWEEN 10 AND 2048 AND url ~ '^https?://'),
    -- Empty = every type; the names are events.type's.
    event_types   text[] NOT NULL DEFAULT '{}' CHECK (cardinality(event_types) <= 16),
    -- "whsec_" + base64 of 32 random bytes (Standard Webhooks). Returned by the
    -- POST that made it and never again; the sender keys HMAC-SHA256 with the
    -- decoded bytes. Not granted to the report role.
    secret        text NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/]{43}=$'),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    -- The start of the current run of failed attempts (NULL after a success):
    -- past webhooks.disable_after_s the endpoint is disabled.
    failing_since timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz,
    CHECK ((status = 'disabled') = (disabled_at IS NOT NULL))
);
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner, created_at);

-- One event for one endpoint. payload is the exact body sent (the event's
-- JSON, made when the delivery is), so it is self-contained: pruning events
-- never touches a delivery still pending, and every retry sends the same bytes.
-- UNIQUE (endpoint_id, event_id) makes a dispatcher that re-reads events after
-- a crash, or a second ledgerd's, harmless.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_seq       bigint NOT NULL CHECK (event_seq > 0),
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    payload         text NOT NULL CHECK (octet_length(payload) <= 65536),
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- attempts made before the last manual redelivery: the retry schedule
    -- counts from here, the attempt numbers go on.
    attempts_before integer NOT NULL DEFAULT 0 CHECK (attempts_before >= 0 AND attempts_before <= attempts),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A sender's claim: nobody else sends it before lease_until. A sender
    -- killed mid-send leaves a lease that expires, and the delivery is sent
    -- again (same webhook-id: at least once). Row locks, no advisory locks.
    lease_until     timestamptz,
    leased_by       text,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (endpoint_id, event_id),
    CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
);
-- The sender's claim: the oldest pending delivery of each endpoint, and the
-- due ones; the API's list, newest first.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, event_seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, event_seq DESC);
-- The dead letters (?state=dead, the dead-letter gauge) and retention's scan.
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (endpoint_id) WHERE state = 'dead';
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (created_at) WHERE state <> 'pending';

-- Every attempt, for GET .../deliveries: what the receiver answered (status,
-- NULL when there was no answer), or why nothing was sent (error).
CREATE TABLE webhook_attempts (
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt_no  integer NOT NULL CHECK (attempt_no > 0),
    at          timestamptz NOT NULL DEFAULT now(),
    http_status integer CHECK (http_status BETWEEN 100 AND 599),
    error       text CHECK (length(error) <= 512),
    duration_ms integer NOT NULL CHECK (duration_ms >= 0),
    PRIMARY KEY (delivery_id, attempt_no)
);

REVOKE ALL ON webhook_endpoints, webhook_deliveries, webhook_attempts FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints, webhook_deliveries TO geoledger_service;
-- An attempt is history: written once, gone only with its delivery.
GRANT SELECT, INSERT ON webhook_attempts TO geoledger_service;
GRANT SELECT (id, owner, owner_is_admin, url, event_types, status, failing_since, created_at, disabled_at)
    ON webhook_endpoints TO geoledger_report;
GRANT SELECT ON webhook_deliveries, webhook_attempts TO geoledger_report;
