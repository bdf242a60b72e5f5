-- The platform: bans, the recording switch, sessions, API tokens, tags, follows, chat,
-- videos and comments, notifications and settings.

-- +goose Up
ALTER TABLE users ADD COLUMN banned INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1));
ALTER TABLE users ADD COLUMN banned_at INTEGER;
ALTER TABLE channels ADD COLUMN recording INTEGER NOT NULL DEFAULT 1 CHECK (recording IN (0, 1));

CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT    NOT NULL UNIQUE,
    csrf_token TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);

CREATE TABLE channel_tags (
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    tag        TEXT    NOT NULL,
    pos        INTEGER NOT NULL,
    PRIMARY KEY (channel_id, tag)
) STRICT;
CREATE INDEX channel_tags_tag_idx ON channel_tags (tag);

CREATE TABLE follows (
    follower_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id  INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (follower_id, channel_id)
) STRICT;
CREATE INDEX follows_channel_id_idx ON follows (channel_id);

CREATE TABLE chat_messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX chat_messages_channel_id_idx ON chat_messages (channel_id, id);
CREATE INDEX chat_messages_user_id_idx ON chat_messages (user_id);

CREATE TABLE chat_bans (
    channel_id   INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_until INTEGER,
    created_by   INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (channel_id, user_id)
) STRICT;
CREATE INDEX chat_bans_user_id_idx ON chat_bans (user_id);
CREATE INDEX chat_bans_created_by_idx ON chat_bans (created_by);

CREATE TABLE videos (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('live', 'recording')),
    ref_id     INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX videos_channel_id_idx ON videos (channel_id, kind);
CREATE UNIQUE INDEX videos_live_idx ON videos (channel_id) WHERE kind = 'live';
INSERT INTO videos (channel_id, kind, created_at) SELECT id, 'live', created_at FROM channels;

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id   INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    edited_at  INTEGER
) STRICT;
CREATE INDEX comments_video_id_idx ON comments (video_id, id);
CREATE INDEX comments_user_id_idx ON comments (user_id);

CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    read_at    INTEGER
) STRICT;
CREATE INDEX notifications_user_id_idx ON notifications (user_id, id);

CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE settings;
DROP TABLE notifications;
DROP TABLE comments;
DROP TABLE videos;
DROP TABLE chat_bans;
DROP TABLE chat_messages;
DROP TABLE follows;
DROP TABLE channel_tags;
DROP TABLE api_tokens;
DROP TABLE sessions;
ALTER TABLE channels DROP COLUMN recording;
ALTER TABLE users DROP COLUMN banned_at;
ALTER TABLE users DROP COLUMN banned;
