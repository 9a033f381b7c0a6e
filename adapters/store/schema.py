"""The SQLite schema of the store: the one contract between the engine and the console.

The engine writes (one writer); consoles and tools only read (WAL mode lets them read
while it writes). Times are ISO 8601 UTC strings (`2026-01-05T10:00:00Z`), which sort
correctly as text. Rows appear in checkpoints: a reader sees whole checkpoints only.
"""

from __future__ import annotations

SCHEMA_VERSION = 3  # 2: outbox delivery state, quarantine; 3: the console's counters and indexes

SCHEMA = """
PRAGMA journal_mode = WAL;

-- key/value facts about the run:
--   schema_version, mode ('replay' or 'serve'), status ('running', 'done', 'failed'),
--   source (log path), config_dir, clock (simulated or real time of the last checkpoint),
--   checkpoint_line (last log line fully applied), report (JSON, SPEC §6 report so far),
--   policy (JSON of the policy in force), journeys (JSON list of journey definitions),
--   channels (JSON: channel -> {"configured": bool, "mode": "dry-run"|"live", "detail": str})
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- every applied event, in the order applied (`id`); duplicates and rejects are not here
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    line        INTEGER NOT NULL,          -- log line number (0 for live ingest)
    customer    TEXT NOT NULL,
    at          TEXT NOT NULL,             -- the event's own timestamp
    applied_at  TEXT NOT NULL,             -- clock when applied (later than `at` when late)
    type        TEXT NOT NULL,             -- 'identify' or 'track'
    name        TEXT,                      -- track event name
    message_id  TEXT,
    late        INTEGER NOT NULL DEFAULT 0,
    payload     TEXT NOT NULL              -- the event as JSON
);
CREATE INDEX IF NOT EXISTS events_customer ON events(customer, id);

-- lines of the log that were not accepted
CREATE TABLE IF NOT EXISTS rejects (
    id      INTEGER PRIMARY KEY,
    line    INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    raw     TEXT NOT NULL
);

-- one row per customer; `state` is the JSON of omniconsole.domain.profile.Profile
-- (traits, opt-outs, last engagement, journey instances, pending timers — a step coming
-- due, a deferred send to decide again, a journey expiring — and recent messages);
-- `next_due` is when its earliest timer is due (NULL: none pending)
CREATE TABLE IF NOT EXISTS profiles (
    customer    TEXT PRIMARY KEY,
    email       TEXT,
    phone       TEXT,
    updated_at  TEXT NOT NULL,
    next_due    TEXT,
    state       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS profiles_next_due ON profiles(next_due) WHERE next_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_email ON profiles(email);
CREATE INDEX IF NOT EXISTS profiles_phone ON profiles(phone);
-- the console finds customers by the start of their name (any case); a state that is
-- not JSON (a damaged row) has no name rather than stopping the writer
CREATE INDEX IF NOT EXISTS profiles_name ON profiles(
    CASE WHEN json_valid(state) THEN
        lower(trim(coalesce(state ->> '$.traits.first_name', state ->> '$.traits.name', '')
                   || ' ' || coalesce(state ->> '$.traits.last_name', '')))
    END);

-- every journey instance; status: 'active', 'converted', 'completed', 'expired'
CREATE TABLE IF NOT EXISTS journey_instances (
    customer    TEXT NOT NULL,
    journey     TEXT NOT NULL,
    instance    INTEGER NOT NULL,
    entered_at  TEXT NOT NULL,
    status      TEXT NOT NULL,
    ended_at    TEXT,
    next_step   TEXT,                      -- pending step, if any
    next_due    TEXT,                      -- when it is due
    PRIMARY KEY (customer, journey, instance)
);
CREATE INDEX IF NOT EXISTS journey_instances_status ON journey_instances(journey, status);
CREATE INDEX IF NOT EXISTS journey_instances_entered ON journey_instances(entered_at);
-- the console's "waiting at each step": the active instances alone, read without the rows
CREATE INDEX IF NOT EXISTS journey_instances_waiting ON journey_instances(journey, next_step)
    WHERE status = 'active';

-- every governor decision (SPEC §6); `line` is the exact ledger JSON line;
-- `explanation` says the reason in words for the support agent
CREATE TABLE IF NOT EXISTS ledger (
    id           INTEGER PRIMARY KEY,      -- order written (tail with id > last seen)
    at           TEXT NOT NULL,
    ts           INTEGER NOT NULL,         -- `at` as microseconds since the epoch (sorts exactly)
    customer     TEXT NOT NULL,
    seq          INTEGER NOT NULL,         -- per-customer decision sequence
    message_id   TEXT NOT NULL,
    journey      TEXT NOT NULL,
    step         TEXT NOT NULL,
    channel      TEXT,
    category     TEXT NOT NULL,
    outcome      TEXT NOT NULL,            -- sent, deferred, suppressed, failed
    reason       TEXT,
    handoff_from TEXT,                     -- JSON {"channel","action","at"} or NULL
    deferred_until TEXT,                   -- for 'deferred': when it is decided again
    explanation  TEXT NOT NULL,
    line         TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_order ON ledger(ts, customer, seq);
CREATE INDEX IF NOT EXISTS ledger_customer ON ledger(customer, at);
-- the console's Decisions view pages the ledger newest first under a filter; each
-- filter it offers has an index that yields its rows in time order
CREATE INDEX IF NOT EXISTS ledger_outcome ON ledger(outcome, ts);
CREATE INDEX IF NOT EXISTS ledger_reason ON ledger(reason, ts) WHERE reason IS NOT NULL;
CREATE INDEX IF NOT EXISTS ledger_channel ON ledger(channel, ts);
CREATE INDEX IF NOT EXISTS ledger_step ON ledger(journey, step, ts);
CREATE INDEX IF NOT EXISTS ledger_handoff
    ON ledger(handoff_from ->> 'channel', channel, ts) WHERE handoff_from IS NOT NULL;

-- the console's counts, kept by the engine's store writer as it writes the ledger and
-- the journey instances, committed with each checkpoint (so no reader folds the
-- ledger); each part of a partitioned store counts its own customers.
-- decisions by kind: '' is none (no channel, no reason); resend 1: a fallback re-send;
-- handoff 'from>to' for a sent handoff
CREATE TABLE IF NOT EXISTS counters (
    journey  TEXT NOT NULL,
    step     TEXT NOT NULL,
    channel  TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    resend   INTEGER NOT NULL,
    handoff  TEXT NOT NULL,
    total    INTEGER NOT NULL,
    PRIMARY KEY (journey, step, channel, outcome, reason, resend, handoff)
) WITHOUT ROWID;
-- decisions per simulated hour ('2026-03-02T10')
CREATE TABLE IF NOT EXISTS counters_hourly (
    hour     TEXT NOT NULL,
    journey  TEXT NOT NULL,
    channel  TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    total    INTEGER NOT NULL,
    PRIMARY KEY (hour, journey, channel, outcome, reason)
) WITHOUT ROWID;
-- journey instances: 'entered', and the final statuses as they happen
CREATE TABLE IF NOT EXISTS instance_counters (
    journey  TEXT NOT NULL,
    status   TEXT NOT NULL,
    total    INTEGER NOT NULL,
    PRIMARY KEY (journey, status)
) WITHOUT ROWID;

-- capped sends (lifecycle/promotional, not in_app): what the governor counts
CREATE TABLE IF NOT EXISTS cap_usage (
    message_id  TEXT PRIMARY KEY,
    customer    TEXT NOT NULL,
    at          TEXT NOT NULL,
    channel     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cap_usage_customer ON cap_usage(customer, at);
CREATE INDEX IF NOT EXISTS cap_usage_at ON cap_usage(at);

-- the in-app inbox
CREATE TABLE IF NOT EXISTS inbox (
    message_id  TEXT PRIMARY KEY,
    customer    TEXT NOT NULL,
    at          TEXT NOT NULL,
    journey     TEXT NOT NULL,
    step        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    read        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inbox_customer ON inbox(customer, at);

-- live sends (outbox): committed with the decision as 'pending' before the provider is
-- called; the delivery runner commits each attempt's outcome at once on its own
-- connection: 'retrying' (transient refusal, again at next_attempt_at), 'reconciling'
-- (timed out after the request left: the provider is asked before any second attempt),
-- or final: 'sent', 'failed', 'expired' (past its category's maximum age),
-- 'unconfirmed' (timed out after the request left, and the provider cannot be asked).
-- The backlog is every row 'pending', 'retrying' or 'reconciling'.
-- `settled` is 1 once the checkpoint holding the final ledger line committed.
CREATE TABLE IF NOT EXISTS outbox (
    message_id      TEXT PRIMARY KEY,
    customer        TEXT NOT NULL,
    channel         TEXT NOT NULL,
    decided_at      TEXT NOT NULL,
    payload         TEXT NOT NULL,         -- JSON of the dispatch request
    status          TEXT NOT NULL,
    category        TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,  -- provider calls made
    next_attempt_at TEXT NOT NULL DEFAULT '',    -- when a waiting send is due
    last_error      TEXT NOT NULL DEFAULT '',
    provider_id     TEXT,                  -- the provider's message id once sent
    attempted_at    TEXT NOT NULL DEFAULT '',    -- when the last provider call started
    updated_at      TEXT NOT NULL DEFAULT '',
    settled         INTEGER NOT NULL DEFAULT 0,
    result          TEXT NOT NULL DEFAULT ''   -- JSON of the final provider answer
);

-- customers whose events could not be applied (an error in the engine or in their
-- data): their later events are stored but not applied, each with a rejects line;
-- everyone else goes on. `reason` is the first error, in one line.
CREATE TABLE IF NOT EXISTS quarantine (
    customer    TEXT PRIMARY KEY,
    since       TEXT NOT NULL,
    reason      TEXT NOT NULL
);

-- channel adapter health as the runtime last saw it
CREATE TABLE IF NOT EXISTS adapter_health (
    channel     TEXT PRIMARY KEY,
    state       TEXT NOT NULL,             -- 'up', 'degraded', 'circuit_open', 'dry_run', 'not_configured'
    detail      TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
"""

#: outbox columns added in version 2, with what an older row gets
_OUTBOX_V2 = (
    ("category", "TEXT NOT NULL DEFAULT ''"),
    ("attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("next_attempt_at", "TEXT NOT NULL DEFAULT ''"),
    ("last_error", "TEXT NOT NULL DEFAULT ''"),
    ("provider_id", "TEXT"),
    ("attempted_at", "TEXT NOT NULL DEFAULT ''"),
    ("updated_at", "TEXT NOT NULL DEFAULT ''"),
    ("settled", "INTEGER NOT NULL DEFAULT 0"),
    ("result", "TEXT NOT NULL DEFAULT ''"),
)


def outbox_migration(columns: set[str]) -> list[str]:
    """The statements that bring a store's outbox (with `columns`) to this version.

    Version 1 rows are final with their ledger line written ('sent', 'failed': settled)
    or waiting ('pending': due at once). The delivery index comes last: it needs the
    columns.
    """
    statements = [
        f"ALTER TABLE outbox ADD COLUMN {name} {kind}"
        for name, kind in _OUTBOX_V2
        if name not in columns
    ]
    if "settled" not in columns:
        statements += [
            "UPDATE outbox SET settled = 1 WHERE status IN ('sent', 'failed')",
            # '' sorts before every time: the waiting rows are due at once
            "UPDATE outbox SET category = payload ->> '$.category', updated_at = decided_at",
        ]
    waiting = " WHERE status IN ('pending', 'retrying', 'reconciling')"
    statements += [
        # the runner's reads stay index range scans however long the backlog grows:
        # due sends (transactional first, then the longest waiting), expiry by age,
        # the backlog per channel and state (covering), outcomes not yet settled
        "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(channel, next_attempt_at)" + waiting,
        "CREATE INDEX IF NOT EXISTS outbox_due_by_category"
        " ON outbox(channel, category, next_attempt_at)" + waiting,
        "CREATE INDEX IF NOT EXISTS outbox_age ON outbox(category, decided_at)" + waiting,
        "CREATE INDEX IF NOT EXISTS outbox_backlog ON outbox(channel, status, decided_at)"
        + waiting,
        "CREATE INDEX IF NOT EXISTS outbox_unsettled ON outbox(settled) WHERE settled = 0",
    ]
    return statements


#: the console's counts of a store written before they were kept (schema < 3), from its
#: ledger and journey instances: the one time they are folded, when the writer opens it
COUNTERS_BACKFILL: tuple[str, ...] = (
    "INSERT INTO counters (journey, step, channel, outcome, reason, resend, handoff, total)"
    " SELECT journey, step, coalesce(channel, ''), outcome, coalesce(reason, ''),"
    " message_id LIKE '%:fallback',"
    " CASE WHEN outcome = 'sent' AND handoff_from IS NOT NULL"
    " THEN (handoff_from ->> 'channel') || '>' || coalesce(channel, '') ELSE '' END,"
    " count(*) FROM ledger GROUP BY 1, 2, 3, 4, 5, 6, 7",
    "INSERT INTO counters_hourly (hour, journey, channel, outcome, reason, total)"
    " SELECT substr(at, 1, 13), journey, coalesce(channel, ''), outcome, coalesce(reason, ''),"
    " count(*) FROM ledger GROUP BY 1, 2, 3, 4, 5",
    "INSERT INTO instance_counters (journey, status, total)"
    " SELECT journey, 'entered', count(*) FROM journey_instances GROUP BY journey"
    " UNION ALL SELECT journey, status, count(*) FROM journey_instances"
    " WHERE status != 'active' GROUP BY journey, status",
)
