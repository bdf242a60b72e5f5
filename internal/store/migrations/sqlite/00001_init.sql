-- Times are integer Unix milliseconds (UTC) on every dialect.

-- +goose Up
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE channels (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL UNIQUE,
    title        TEXT    NOT NULL DEFAULT '',
    description  TEXT    NOT NULL DEFAULT '',
    last_live_at INTEGER,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE stream_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    key_hash   TEXT    NOT NULL UNIQUE,
    key_enc    BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX stream_keys_channel_id_idx ON stream_keys (channel_id);

-- +goose Down
DROP TABLE stream_keys;
DROP TABLE channels;
DROP TABLE users;
