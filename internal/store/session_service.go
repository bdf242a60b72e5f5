package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/onair/onair/internal/onair"
)

// Session and API tokens are tokenBytes random bytes in unpadded base64url, TokenLen
// characters. The database holds only their hex SHA-256: with 256 bits of entropy a fast
// hash is enough, and a stolen database holds no usable token.
const (
	tokenBytes = 32
	TokenLen   = (tokenBytes*8 + 5) / 6
)

// apiTokenTouchEvery bounds how often FindUserByAPIToken records last_used_at, so that a
// busy API client does not write on every request.
const apiTokenTouchEvery = time.Minute

var _ onair.SessionService = (*SessionService)(nil)

// SessionService implements onair.SessionService on a DB. Sessions last DB.SessionLife.
type SessionService struct {
	db *DB
}

// NewSessionService returns a SessionService on db.
func NewSessionService(db *DB) *SessionService {
	return &SessionService{db: db}
}

// newToken returns a new random token.
func newToken() (onair.Secret, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return onair.Secret(base64.RawURLEncoding.EncodeToString(b)), nil
}

// hashToken returns the hex SHA-256 of a token.
func hashToken(token onair.Secret) string {
	sum := sha256.Sum256([]byte(token.Reveal()))
	return hex.EncodeToString(sum[:])
}

// validToken reports whether token looks like a token newToken makes.
func validToken(token onair.Secret) bool {
	s := token.Reveal()
	if len(s) != TokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == tokenBytes
}

func errBadSession() error {
	return onair.Errorf(onair.EUNAUTHORIZED, "Your session has expired. Please sign in again.")
}

func errBadToken() error { return onair.Errorf(onair.EUNAUTHORIZED, "Invalid API token.") }

// CreateSession starts a session of DB.SessionLife for the user, with a new token and
// CSRF token. It fails with ENOTFOUND for an unknown user and EFORBIDDEN for a banned one.
// The user's expired sessions are deleted on the way.
func (s *SessionService) CreateSession(ctx context.Context, userID int64) (*onair.Session, error) {
	db := s.db
	u, err := scanUser(db.db.QueryRowContext(ctx, db.q(`SELECT `+userColumns+` FROM users u WHERE u.id = ?`), userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, onair.Errorf(onair.ENOTFOUND, "User not found.")
	} else if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	if u.Banned {
		return nil, errBanned()
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	csrf, err := newToken()
	if err != nil {
		return nil, err
	}
	now := db.now()
	sess := &onair.Session{
		Token:     token,
		CSRFToken: csrf.Reveal(),
		User:      u,
		CreatedAt: now,
		ExpiresAt: now.Add(db.SessionLife),
	}
	err = db.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM sessions WHERE user_id = ? AND expires_at <= ?`), userID, millis(now)); err != nil {
			return fmt.Errorf("prune sessions: %w", err)
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO sessions (token_hash, csrf_token, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
			hashToken(token), sess.CSRFToken, userID, millis(now), millis(sess.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return sess, nil
}

// FindSession returns the session of token with its user. It fails with EUNAUTHORIZED
// when the token is malformed, unknown or expired (an expired session is deleted), or when
// its user is banned. The token is looked up by its hash, which is then compared in
// constant time.
func (s *SessionService) FindSession(ctx context.Context, token onair.Secret) (*onair.Session, error) {
	if !validToken(token) {
		return nil, errBadSession()
	}
	db := s.db
	want := hashToken(token)
	var (
		id               int64
		got, csrf        string
		created, expires int64
	)
	u, err := scanUser(db.db.QueryRowContext(ctx, db.q(`
		SELECT `+userColumns+`, s.id, s.token_hash, s.csrf_token, s.created_at, s.expires_at
		FROM sessions s
		JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ?`), want), &id, &got, &csrf, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBadSession()
	} else if err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return nil, errBadSession()
	}
	if expires <= millis(db.now()) {
		if _, err := db.db.ExecContext(ctx, db.q(`DELETE FROM sessions WHERE id = ?`), id); err != nil {
			return nil, fmt.Errorf("delete expired session: %w", err)
		}
		return nil, errBadSession()
	}
	if u.Banned {
		return nil, errBadSession()
	}
	return &onair.Session{
		Token:     token,
		CSRFToken: csrf,
		User:      u,
		CreatedAt: fromMillis(created),
		ExpiresAt: fromMillis(expires),
	}, nil
}

// DeleteSession deletes the session of token. Unknown and malformed tokens are not an
// error.
func (s *SessionService) DeleteSession(ctx context.Context, token onair.Secret) error {
	if !validToken(token) {
		return nil
	}
	db := s.db
	if _, err := db.db.ExecContext(ctx, db.q(`DELETE FROM sessions WHERE token_hash = ?`), hashToken(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PruneSessions deletes the expired sessions of every user and returns how many. Expired
// sessions are refused anyway; the app may call this now and then to keep the table small.
func (s *SessionService) PruneSessions(ctx context.Context) (int64, error) {
	db := s.db
	res, err := db.db.ExecContext(ctx, db.q(`DELETE FROM sessions WHERE expires_at <= ?`), millis(db.now()))
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	return n, nil
}

// CreateAPIToken returns a new personal API token named name (1 to 100 characters) for
// the user. It fails with ENOTFOUND for an unknown user and EFORBIDDEN for a banned one.
// The token does not expire; it is stored hashed and cannot be shown again.
func (s *SessionService) CreateAPIToken(ctx context.Context, userID int64, name string) (onair.Secret, error) {
	name, err := cleanText("Token name", name, maxTokenNameLen, false, true)
	if err != nil {
		return "", err
	}
	db := s.db
	var banned bool
	err = db.db.QueryRowContext(ctx, db.q(`SELECT banned FROM users WHERE id = ?`), userID).Scan(&banned)
	if errors.Is(err, sql.ErrNoRows) {
		return "", onair.Errorf(onair.ENOTFOUND, "User not found.")
	} else if err != nil {
		return "", fmt.Errorf("create api token: %w", err)
	}
	if banned {
		return "", errBanned()
	}
	token, err := newToken()
	if err != nil {
		return "", err
	}
	_, err = db.db.ExecContext(ctx, db.q(`INSERT INTO api_tokens (token_hash, user_id, name, created_at) VALUES (?, ?, ?, ?)`),
		hashToken(token), userID, name, millis(db.now()))
	if err != nil {
		return "", fmt.Errorf("create api token: %w", err)
	}
	return token, nil
}

// FindUserByAPIToken returns the user of token, or EUNAUTHORIZED when it is malformed or
// unknown, and EFORBIDDEN when the user is banned. It records when the token was last
// used (at most once a minute).
func (s *SessionService) FindUserByAPIToken(ctx context.Context, token onair.Secret) (*onair.User, error) {
	if !validToken(token) {
		return nil, errBadToken()
	}
	db := s.db
	want := hashToken(token)
	var id int64
	var got string
	var lastUsed sql.NullInt64
	u, err := scanUser(db.db.QueryRowContext(ctx, db.q(`
		SELECT `+userColumns+`, t.id, t.token_hash, t.last_used_at
		FROM api_tokens t
		JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = ?`), want), &id, &got, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBadToken()
	} else if err != nil {
		return nil, fmt.Errorf("find api token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return nil, errBadToken()
	}
	if u.Banned {
		return nil, errBanned()
	}
	now := millis(db.now())
	if !lastUsed.Valid || now-lastUsed.Int64 >= apiTokenTouchEvery.Milliseconds() {
		if _, err := db.db.ExecContext(ctx, db.q(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`), now, id); err != nil {
			return nil, fmt.Errorf("touch api token: %w", err)
		}
	}
	return u, nil
}

// RevokeAPITokens deletes every API token of the user.
func (s *SessionService) RevokeAPITokens(ctx context.Context, userID int64) error {
	db := s.db
	if _, err := db.db.ExecContext(ctx, db.q(`DELETE FROM api_tokens WHERE user_id = ?`), userID); err != nil {
		return fmt.Errorf("revoke api tokens: %w", err)
	}
	return nil
}
