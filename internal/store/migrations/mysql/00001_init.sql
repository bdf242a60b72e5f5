-- Times are integer Unix milliseconds (UTC) on every dialect. Tables are InnoDB in
-- utf8mb4 with a binary collation, so text compares and sorts byte-wise as on SQLite and
-- PostgreSQL (COLLATE "C"). Foreign keys are table constraints: MySQL ignores REFERENCES
-- written in a column definition.

-- +goose Up
CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(30)  NOT NULL,
    email         VARCHAR(254) NOT NULL DEFAULT '',
    password_hash VARCHAR(255) NOT NULL,
    is_admin      BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at    BIGINT       NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE channels (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT       NOT NULL,
    name         VARCHAR(30)  NOT NULL,
    title        VARCHAR(255) NOT NULL DEFAULT '',
    description  TEXT         NOT NULL,
    last_live_at BIGINT,
    created_at   BIGINT       NOT NULL,
    CONSTRAINT channels_user_id_key UNIQUE (user_id),
    CONSTRAINT channels_name_key UNIQUE (name),
    CONSTRAINT channels_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE stream_keys (
    id         BIGINT         NOT NULL AUTO_INCREMENT PRIMARY KEY,
    channel_id BIGINT         NOT NULL,
    key_hash   VARCHAR(64)    NOT NULL,
    key_enc    VARBINARY(255) NOT NULL,
    created_at BIGINT         NOT NULL,
    CONSTRAINT stream_keys_key_hash_key UNIQUE (key_hash),
    INDEX stream_keys_channel_id_idx (channel_id),
    CONSTRAINT stream_keys_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES channels (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE stream_keys;
DROP TABLE channels;
DROP TABLE users;
