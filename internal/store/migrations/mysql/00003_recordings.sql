-- Recordings of broadcasts (replays). Each has a 'recording' video (videos.ref_id is the
-- recording's id) that comments attach to; deleting a recording deletes that video, and
-- with it the comments, in the same transaction.

-- +goose Up
CREATE TABLE recordings (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    channel_id  BIGINT       NOT NULL,
    video_id    BIGINT,
    title       VARCHAR(255) NOT NULL DEFAULT '',
    status      VARCHAR(16)  NOT NULL,
    reason      VARCHAR(255) NOT NULL DEFAULT '',
    started_at  BIGINT       NOT NULL,
    ended_at    BIGINT,
    duration_ms BIGINT       NOT NULL DEFAULT 0,
    bytes       BIGINT       NOT NULL DEFAULT 0,
    segments    INT          NOT NULL DEFAULT 0,
    views       INT          NOT NULL DEFAULT 0,
    CONSTRAINT recordings_status_check CHECK (status IN ('recording', 'finished', 'failed')),
    INDEX recordings_channel_id_idx (channel_id, id),
    INDEX recordings_video_id_idx (video_id),
    INDEX recordings_status_idx (status),
    INDEX recordings_started_at_idx (started_at, id),
    CONSTRAINT recordings_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES channels (id) ON DELETE CASCADE,
    CONSTRAINT recordings_video_id_fkey FOREIGN KEY (video_id) REFERENCES videos (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX videos_ref_id_idx ON videos (ref_id);

-- +goose Down
DROP INDEX videos_ref_id_idx ON videos;
DROP TABLE recordings;
