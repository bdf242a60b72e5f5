package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/onair/onair/internal/onair"
)

// ChangePassword checks oldPassword and sets newPassword, then deletes every session of
// the user but keepSession (which may be empty). A wrong old password is EINVALID, an
// unknown user ENOTFOUND and a banned one EFORBIDDEN.
func (s *UserService) ChangePassword(ctx context.Context, userID int64, oldPassword, newPassword string, keepSession onair.Secret) error {
	if err := validatePassword(newPassword); err != nil {
		return err
	}
	u, hash, err := s.findUser(ctx, `id = ?`, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return onair.Errorf(onair.ENOTFOUND, "User not found.")
	} else if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if u.Banned {
		return errBanned()
	}
	ok, err := VerifyPassword(hash, oldPassword)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if !ok {
		return onair.Errorf(onair.EINVALID, "Current password is incorrect.")
	}
	newHash, err := HashPassword(newPassword)
	if err != nil {
		return err
	}
	// An empty or malformed keepSession matches no session: all are deleted.
	keep := ""
	if validToken(keepSession) {
		keep = hashToken(keepSession)
	}
	db := s.db
	err = db.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE users SET password_hash = ? WHERE id = ?`), newHash, userID); err != nil {
			return fmt.Errorf("update password: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?`), userID, keep); err != nil {
			return fmt.Errorf("delete sessions: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return nil
}

// DeleteUser deletes the user; the database cascades to everything that is theirs: the
// channel with its keys, tags, live video, chat and comments, their follows both ways,
// chat messages, bans, comments, sessions, API tokens and notifications. actor must be the
// user or an admin.
func (s *UserService) DeleteUser(ctx context.Context, actor *onair.User, userID int64) error {
	if err := requireActor(actor); err != nil {
		return err
	}
	if actor.ID != userID && !actor.IsAdmin {
		return onair.Errorf(onair.EFORBIDDEN, "You can only delete your own account.")
	}
	db := s.db
	res, err := db.db.ExecContext(ctx, db.q(`DELETE FROM users WHERE id = ?`), userID)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete user: %w", err)
	} else if n == 0 {
		return onair.Errorf(onair.ENOTFOUND, "User not found.")
	}
	return nil
}

// ListUsers returns users newest first, from offset, at most limit (default 50, at most
// 1000). actor must be an admin.
func (s *UserService) ListUsers(ctx context.Context, actor *onair.User, offset, limit int) ([]*onair.User, error) {
	if err := requireAdmin(actor); err != nil {
		return nil, err
	}
	offset = max(offset, 0)
	db := s.db
	rows, err := db.db.QueryContext(ctx, db.q(`SELECT `+userColumns+` FROM users u ORDER BY u.id DESC LIMIT ? OFFSET ?`),
		clampLimit(limit), offset)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	users := []*onair.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// SetUserBanned bans or unbans a user site-wide. Banning deletes the user's sessions (their
// API tokens stay, but are refused while the ban lasts). actor must be an admin, and cannot
// ban themself.
func (s *UserService) SetUserBanned(ctx context.Context, actor *onair.User, userID int64, banned bool) error {
	if err := requireAdmin(actor); err != nil {
		return err
	}
	if banned && actor.ID == userID {
		return onair.Errorf(onair.EINVALID, "You cannot ban yourself.")
	}
	db := s.db
	var bannedAt sql.NullInt64
	if banned {
		bannedAt = sql.NullInt64{Int64: millis(db.now()), Valid: true}
	}
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM users WHERE id = ?`+db.dialect.forUpdate()), userID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return onair.Errorf(onair.ENOTFOUND, "User not found.")
		} else if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE users SET banned = ?, banned_at = ? WHERE id = ?`), banned, bannedAt, userID); err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if banned {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM sessions WHERE user_id = ?`), userID); err != nil {
				return fmt.Errorf("delete sessions: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set user banned: %w", err)
	}
	return nil
}
