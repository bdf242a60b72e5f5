package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/onair/onair/internal/onair"
)

var _ onair.NotificationService = (*NotificationService)(nil)

// NotificationService implements onair.NotificationService on a DB.
type NotificationService struct {
	db *DB
}

// NewNotificationService returns a NotificationService on db.
func NewNotificationService(db *DB) *NotificationService {
	return &NotificationService{db: db}
}

// Notify adds n (its Kind, Channel and Text; the rest is set here) for each user, in
// one transaction. Duplicate and unknown user IDs are skipped. Kind is required.
func (s *NotificationService) Notify(ctx context.Context, userIDs []int64, n onair.Notification) error {
	kind, err := cleanText("Kind", n.Kind, maxNotifyKindLen, false, true)
	if err != nil {
		return err
	}
	channel, err := cleanText("Channel", n.Channel, maxNotifyChannel, false, false)
	if err != nil {
		return err
	}
	text, err := cleanText("Text", n.Text, maxNotifyTextLen, true, false)
	if err != nil {
		return err
	}
	ids := slices.Clone(userIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil
	}
	db := s.db
	now := millis(db.now())
	err = db.withTx(ctx, func(tx *sql.Tx) error {
		for len(ids) > 0 {
			batch := ids[:min(len(ids), notifyInsertBatch)]
			ids = ids[len(batch):]
			// Keep the users that exist, so that one deleted meanwhile fails nobody.
			existing, err := existingUsers(ctx, db, tx, batch)
			if err != nil {
				return err
			}
			if len(existing) == 0 {
				continue
			}
			var q []byte
			q = append(q, "INSERT INTO notifications (user_id, kind, channel, body, created_at) VALUES "...)
			args := make([]any, 0, 5*len(existing))
			for i, id := range existing {
				if i > 0 {
					q = append(q, ", "...)
				}
				q = append(q, "(?, ?, ?, ?, ?)"...)
				args = append(args, id, kind, channel, text, now)
			}
			if _, err := tx.ExecContext(ctx, db.q(string(q)), args...); err != nil {
				return fmt.Errorf("insert notifications: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// existingUsers returns those of ids that are users.
func existingUsers(ctx context.Context, db *DB, q querier, ids []int64) ([]int64, error) {
	in, args := inArgs(ids)
	rows, err := q.QueryContext(ctx, db.q(`SELECT id FROM users WHERE id IN (`+in+`) ORDER BY id`), args...)
	if err != nil {
		return nil, fmt.Errorf("find users: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find users: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find users: %w", err)
	}
	return out, nil
}

// Notifications returns the user's newest notifications, newest first, at most limit
// (default 50, at most 1000).
func (s *NotificationService) Notifications(ctx context.Context, userID int64, limit int) ([]*onair.Notification, error) {
	db := s.db
	rows, err := db.db.QueryContext(ctx, db.q(`
		SELECT id, kind, channel, body, created_at, read_at
		FROM notifications
		WHERE user_id = ?
		ORDER BY id DESC
		LIMIT ?`), userID, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	defer rows.Close()
	list := []*onair.Notification{}
	for rows.Next() {
		var n onair.Notification
		var created int64
		var read sql.NullInt64
		if err := rows.Scan(&n.ID, &n.Kind, &n.Channel, &n.Text, &created, &read); err != nil {
			return nil, fmt.Errorf("notifications: %w", err)
		}
		n.CreatedAt = fromMillis(created)
		n.ReadAt = nullMillis(read)
		list = append(list, &n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return list, nil
}

// UnreadCount returns how many of the user's notifications are unread.
func (s *NotificationService) UnreadCount(ctx context.Context, userID int64) (int, error) {
	db := s.db
	var n int
	if err := db.db.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read_at IS NULL`), userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("unread count: %w", err)
	}
	return n, nil
}

// MarkNotificationsRead marks all the user's unread notifications read now.
func (s *NotificationService) MarkNotificationsRead(ctx context.Context, userID int64) error {
	db := s.db
	if _, err := db.db.ExecContext(ctx, db.q(`UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL`),
		millis(db.now()), userID); err != nil {
		return fmt.Errorf("mark notifications read: %w", err)
	}
	return nil
}
