-- The in-process command queue (one-process mode): what RabbitMQ's durable queue and dead-letter
-- queue are when AMQP_URL is unset. Times are Unix milliseconds.
CREATE TABLE bus_commands (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT    NOT NULL,
    correlation_id TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    -- The command's deadline: after it the command is dropped unapplied.
    deadline_ms    INTEGER NOT NULL,
    -- Deliveries so far; beyond the limit the command is dead-lettered.
    deliveries     INTEGER NOT NULL DEFAULT 0,
    -- Claimable from this instant: enqueue time, then the end of a consumer's lease (a
    -- consumer that dies leaves it to be delivered again) or of a retry pause.
    visible_at_ms  INTEGER NOT NULL,
    lease_owner    TEXT,
    enqueued_at_ms INTEGER NOT NULL
);
CREATE INDEX bus_commands_visible ON bus_commands (visible_at_ms, seq);

CREATE TABLE bus_dead (
    seq            INTEGER PRIMARY KEY,
    message_id     TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    deliveries     INTEGER NOT NULL,
    died_at_ms     INTEGER NOT NULL
);
