-- The per-channel transcoding switch: when the site transcodes, a channel's broadcasts get
-- the adaptive bit rate ladder unless its owner turned this off.

-- +goose Up
ALTER TABLE channels ADD COLUMN transcode INTEGER NOT NULL DEFAULT 1 CHECK (transcode IN (0, 1));

-- +goose Down
ALTER TABLE channels DROP COLUMN transcode;
