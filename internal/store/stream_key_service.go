package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/onair/onair/internal/onair"
)

var _ onair.StreamKeyService = (*StreamKeyService)(nil)

// StreamKeyService implements onair.StreamKeyService on a DB.
type StreamKeyService struct {
	db *DB
}

// NewStreamKeyService returns a StreamKeyService on db.
func NewStreamKeyService(db *DB) *StreamKeyService {
	return &StreamKeyService{db: db}
}

// StreamKey returns the current stream key of the user's channel, or ENOTFOUND.
func (s *StreamKeyService) StreamKey(ctx context.Context, userID int64) (onair.StreamKey, error) {
	db := s.db
	var channelID int64
	var enc []byte
	err := db.db.QueryRowContext(ctx, db.q(`
		SELECT c.id, k.key_enc
		FROM channels c
		JOIN stream_keys k ON k.channel_id = c.id
		WHERE c.user_id = ?
		ORDER BY k.id DESC
		LIMIT 1`), userID).Scan(&channelID, &enc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", onair.Errorf(onair.ENOTFOUND, "Stream key not found.")
	} else if err != nil {
		return "", fmt.Errorf("stream key: %w", err)
	}
	return db.openStreamKey(channelID, enc)
}

// ResetStreamKey replaces the keys of the user's channel with a new one in one
// transaction and returns it: the old key stops working at once.
func (s *StreamKeyService) ResetStreamKey(ctx context.Context, userID int64) (onair.StreamKey, error) {
	db := s.db
	key, err := newStreamKey()
	if err != nil {
		return "", err
	}
	now := db.now()
	err = db.withTx(ctx, func(tx *sql.Tx) error {
		var channelID int64
		err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM channels WHERE user_id = ?`+db.dialect.forUpdate()), userID).Scan(&channelID)
		if errors.Is(err, sql.ErrNoRows) {
			return onair.Errorf(onair.ENOTFOUND, "Channel not found.")
		} else if err != nil {
			return fmt.Errorf("find channel: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM stream_keys WHERE channel_id = ?`), channelID); err != nil {
			return fmt.Errorf("delete stream keys: %w", err)
		}
		return db.insertStreamKey(ctx, tx, channelID, key, now)
	})
	if err != nil {
		return "", fmt.Errorf("reset stream key: %w", err)
	}
	return key, nil
}

// ChannelByStreamKey returns the channel that key publishes to, or ENOTFOUND. The key is
// looked up by its hash, which is then compared in constant time; neither the key nor its
// hash appears in an error. The key of a banned user is refused with EFORBIDDEN.
func (s *StreamKeyService) ChannelByStreamKey(ctx context.Context, key onair.StreamKey) (*onair.Channel, error) {
	notFound := onair.Errorf(onair.ENOTFOUND, "Stream key not found.")
	if !validStreamKeyFormat(key) {
		return nil, notFound
	}
	db := s.db
	want := hashStreamKey(key)
	var got string
	var banned bool
	ch, err := scanChannel(db.db.QueryRowContext(ctx, db.q(`
		SELECT `+channelColumns+`, k.key_hash, u.banned
		FROM stream_keys k
		JOIN channels c ON c.id = k.channel_id
		JOIN users u ON u.id = c.user_id
		WHERE k.key_hash = ?`), want), &got, &banned)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound
	} else if err != nil {
		return nil, fmt.Errorf("channel by stream key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return nil, notFound
	}
	if banned {
		return nil, errBanned()
	}
	return ch, nil
}

// insertStreamKey stores key for channelID, hashed and encrypted.
func (db *DB) insertStreamKey(ctx context.Context, tx *sql.Tx, channelID int64, key onair.StreamKey, now time.Time) error {
	enc, err := db.sealStreamKey(channelID, key)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, db.q(`INSERT INTO stream_keys (channel_id, key_hash, key_enc, created_at) VALUES (?, ?, ?, ?)`),
		channelID, hashStreamKey(key), enc, millis(now))
	if err != nil {
		return fmt.Errorf("insert stream key: %w", err)
	}
	return nil
}
