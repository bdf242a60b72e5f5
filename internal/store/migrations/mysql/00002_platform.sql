-- The platform: bans, the recording switch, sessions, API tokens, tags, follows, chat,
-- videos and comments, notifications and settings.
-- MySQL has no partial index, so unlike the other dialects nothing but the store keeps a
-- channel to one live video.

-- +goose Up
ALTER TABLE users ADD COLUMN banned BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN banned_at BIGINT;
ALTER TABLE channels ADD COLUMN recording BOOLEAN NOT NULL DEFAULT TRUE;

CREATE TABLE sessions (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    token_hash VARCHAR(64) NOT NULL,
    csrf_token VARCHAR(64) NOT NULL,
    user_id    BIGINT      NOT NULL,
    created_at BIGINT      NOT NULL,
    expires_at BIGINT      NOT NULL,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash),
    INDEX sessions_user_id_idx (user_id),
    INDEX sessions_expires_at_idx (expires_at),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE api_tokens (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    token_hash   VARCHAR(64)  NOT NULL,
    user_id      BIGINT       NOT NULL,
    name         VARCHAR(255) NOT NULL,
    created_at   BIGINT       NOT NULL,
    last_used_at BIGINT,
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    INDEX api_tokens_user_id_idx (user_id),
    CONSTRAINT api_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE channel_tags (
    channel_id BIGINT      NOT NULL,
    tag        VARCHAR(30) NOT NULL,
    pos        INT         NOT NULL,
    PRIMARY KEY (channel_id, tag),
    INDEX channel_tags_tag_idx (tag),
    CONSTRAINT channel_tags_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES channels (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE follows (
    follower_id BIGINT NOT NULL,
    channel_id  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (follower_id, channel_id),
    INDEX follows_channel_id_idx (channel_id),
    CONSTRAINT follows_follower_id_fkey FOREIGN KEY (follower_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT follows_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES channels (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE chat_messages (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    channel_id BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    INDEX chat_messages_channel_id_idx (channel_id, id),
    INDEX chat_messages_user_id_idx (user_id),
    CONSTRAINT chat_messages_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES channels (id) ON DELETE CASCADE,
    CONSTRAINT chat_messages_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE chat_bans (
    channel_id   BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    banned_until BIGINT,
    created_by   BIGINT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id),
    INDEX chat_bans_user_id_idx (user_id),
    INDEX chat_bans_created_by_idx (created_by),
    CONSTRAINT chat_bans_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES channels (id) ON DELETE CASCADE,
    CONSTRAINT chat_bans_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT chat_bans_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE videos (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    channel_id BIGINT      NOT NULL,
    kind       VARCHAR(16) NOT NULL,
    ref_id     BIGINT,
    created_at BIGINT      NOT NULL,
    CONSTRAINT videos_kind_check CHECK (kind IN ('live', 'recording')),
    INDEX videos_channel_id_idx (channel_id, kind),
    CONSTRAINT videos_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES channels (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO videos (channel_id, kind, created_at) SELECT id, 'live', created_at FROM channels;

CREATE TABLE comments (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    video_id   BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at  BIGINT,
    INDEX comments_video_id_idx (video_id, id),
    INDEX comments_user_id_idx (user_id),
    CONSTRAINT comments_video_id_fkey FOREIGN KEY (video_id) REFERENCES videos (id) ON DELETE CASCADE,
    CONSTRAINT comments_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE notifications (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id    BIGINT      NOT NULL,
    kind       VARCHAR(16) NOT NULL,
    channel    VARCHAR(64) NOT NULL,
    body       TEXT        NOT NULL,
    created_at BIGINT      NOT NULL,
    read_at    BIGINT,
    INDEX notifications_user_id_idx (user_id, id),
    CONSTRAINT notifications_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE settings (
    name  VARCHAR(64) NOT NULL PRIMARY KEY,
    value TEXT        NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

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
