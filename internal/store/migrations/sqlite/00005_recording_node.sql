-- The node that writes a recording (config node; '' on a single node): at start, a node
-- repairs only its own recordings left active by a crash, not the running recordings of
-- the other nodes of a cluster sharing the database.

-- +goose Up
ALTER TABLE recordings ADD COLUMN node TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE recordings DROP COLUMN node;
