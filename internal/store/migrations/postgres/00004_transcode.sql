-- The per-channel transcoding switch: when the site transcodes, a channel's broadcasts get
-- the adaptive bit rate ladder unless its owner turned this off.

-- +goose Up
ALTER TABLE channels ADD COLUMN transcode BOOLEAN NOT NULL DEFAULT TRUE;

-- +goose Down
ALTER TABLE channels DROP COLUMN transcode;
