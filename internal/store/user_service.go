package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"unicode/utf8"

	"github.com/onair/onair/internal/onair"
)

// Password and email limits checked by CreateUser.
const (
	MinPasswordLen = 8    // characters
	MaxPasswordLen = 1024 // characters
	maxEmailLen    = 254
)

var (
	_ onair.UserService    = (*UserService)(nil)
	_ onair.AccountService = (*UserService)(nil)
)

// UserService implements onair.UserService and onair.AccountService on a DB.
type UserService struct {
	db *DB
}

// NewUserService returns a UserService on db.
func NewUserService(db *DB) *UserService {
	return &UserService{db: db}
}

// CreateUser validates u and password, then creates the user, its channel (named after
// the username), the channel's live video and its first stream key in one transaction, and returns the key. It
// sets u.ID and u.CreatedAt, and sets u.IsAdmin when u is the first user. It fails with
// EINVALID on a bad username, email or password and with ECONFLICT when the username is
// taken.
func (s *UserService) CreateUser(ctx context.Context, u *onair.User, password string) (onair.StreamKey, error) {
	if u == nil {
		return "", onair.Errorf(onair.EINVALID, "User required.")
	}
	if err := validateUser(u, password); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("create user: %w", err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return "", err
	}
	key, err := newStreamKey()
	if err != nil {
		return "", err
	}

	db := s.db
	now := db.now()
	isAdmin := u.IsAdmin
	var userID int64
	err = db.withTx(ctx, func(tx *sql.Tx) error {
		var users, channels, total int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM users WHERE username = ?`), u.Username).Scan(&users); err != nil {
			return fmt.Errorf("check username: %w", err)
		}
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM channels WHERE name = ?`), u.Username).Scan(&channels); err != nil {
			return fmt.Errorf("check channel name: %w", err)
		}
		if users > 0 || channels > 0 {
			return usernameTaken(u.Username)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&total); err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		admin := isAdmin || total == 0

		id, err := db.dialect.insertID(ctx, tx,
			`INSERT INTO users (username, email, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, ?)`,
			u.Username, u.Email, hash, admin, millis(now))
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		channelID, err := db.dialect.insertID(ctx, tx,
			`INSERT INTO channels (user_id, name, title, description, created_at) VALUES (?, ?, ?, ?, ?)`,
			id, u.Username, "", "", millis(now))
		if err != nil {
			return fmt.Errorf("insert channel: %w", err)
		}
		if err := db.insertStreamKey(ctx, tx, channelID, key, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO videos (channel_id, kind, created_at) VALUES (?, ?, ?)`),
			channelID, videoKindLive, millis(now)); err != nil {
			return fmt.Errorf("insert live video: %w", err)
		}
		userID, isAdmin = id, admin
		return nil
	})
	if db.dialect.isUniqueViolation(err) {
		return "", usernameTaken(u.Username)
	} else if err != nil {
		return "", fmt.Errorf("create user: %w", err)
	}
	u.ID, u.CreatedAt, u.IsAdmin = userID, now, isAdmin
	return key, nil
}

func usernameTaken(name string) error {
	return onair.Errorf(onair.ECONFLICT, "Username %q is already taken.", name)
}

// validateUser checks the fields CreateUser stores.
func validateUser(u *onair.User, password string) error {
	if err := onair.ValidateUsername(u.Username); err != nil {
		return err
	}
	if u.Email != "" {
		if len(u.Email) > maxEmailLen {
			return onair.Errorf(onair.EINVALID, "Email address must be at most %d characters.", maxEmailLen)
		}
		addr, err := mail.ParseAddress(u.Email)
		if err != nil || addr.Address != u.Email || addr.Name != "" {
			return onair.Errorf(onair.EINVALID, "Email address is not valid.")
		}
	}
	return validatePassword(password)
}

// validatePassword checks the length of a new password, in characters.
func validatePassword(password string) error {
	if n := utf8.RuneCountInString(password); n < MinPasswordLen {
		return onair.Errorf(onair.EINVALID, "Password must be at least %d characters.", MinPasswordLen)
	} else if n > MaxPasswordLen {
		return onair.Errorf(onair.EINVALID, "Password must be at most %d characters.", MaxPasswordLen)
	}
	return nil
}

// userColumns are the columns scanUser reads, from a table aliased u.
const userColumns = `u.id, u.username, u.email, u.is_admin, u.banned, u.created_at`

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// scanUser scans userColumns, then extra.
func scanUser(row rowScanner, extra ...any) (*onair.User, error) {
	var u onair.User
	var created int64
	dest := append([]any{&u.ID, &u.Username, &u.Email, &u.IsAdmin, &u.Banned, &created}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMillis(created)
	return &u, nil
}

// FindUserByUsername returns the user, or ENOTFOUND.
func (s *UserService) FindUserByUsername(ctx context.Context, username string) (*onair.User, error) {
	u, _, err := s.findUser(ctx, `username = ?`, username)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, onair.Errorf(onair.ENOTFOUND, "User %q not found.", username)
	} else if err != nil {
		return nil, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

// FindUserByID returns the user, or ENOTFOUND.
func (s *UserService) FindUserByID(ctx context.Context, id int64) (*onair.User, error) {
	u, _, err := s.findUser(ctx, `id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, onair.Errorf(onair.ENOTFOUND, "User not found.")
	} else if err != nil {
		return nil, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

// Authenticate returns the user when password is theirs, and EUNAUTHORIZED with the same
// message for an unknown username or a wrong password. Both take about as long. A banned
// user with the right password gets EFORBIDDEN.
func (s *UserService) Authenticate(ctx context.Context, username, password string) (*onair.User, error) {
	u, hash, err := s.findUser(ctx, `username = ?`, username)
	if errors.Is(err, sql.ErrNoRows) {
		hash = dummyPasswordHash()
		u = nil
	} else if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	ok, err := VerifyPassword(hash, password)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if !ok || u == nil {
		return nil, onair.Errorf(onair.EUNAUTHORIZED, "Invalid username or password.")
	}
	if u.Banned {
		return nil, errBanned()
	}
	return u, nil
}

// findUser returns the user matching where (one `?` placeholder) and its password hash.
func (s *UserService) findUser(ctx context.Context, where string, arg any) (*onair.User, string, error) {
	var hash string
	u, err := scanUser(s.db.db.QueryRowContext(ctx, s.db.q(`SELECT `+userColumns+`, u.password_hash FROM users u WHERE u.`+where), arg), &hash)
	if err != nil {
		return nil, "", err
	}
	return u, hash, nil
}
