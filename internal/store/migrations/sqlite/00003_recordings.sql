-- Recordings of broadcasts (replays). Each has a 'recording' video (videos.ref_id is the
-- recording's id) that comments attach to; deleting a recording deletes that video, and
-- with it the comments, in the same transaction.

-- +goose Up
CREATE TABLE recordings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id  INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    video_id    INTEGER REFERENCES videos (id) ON DELETE SET NULL,
    title       TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL CHECK (status IN ('recording', 'finished', 'failed')),
    reason      TEXT    NOT NULL DEFAULT '',
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0,
    segments    INTEGER NOT NULL DEFAULT 0,
    views       INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX recordings_channel_id_idx ON recordings (channel_id, id);
CREATE INDEX recordings_video_id_idx ON recordings (video_id);
CREATE INDEX recordings_status_idx ON recordings (status);
CREATE INDEX recordings_started_at_idx ON recordings (started_at, id);
CREATE INDEX videos_ref_id_idx ON videos (ref_id);

-- +goose Down
DROP INDEX videos_ref_id_idx;
DROP TABLE recordings;
