// Package store is the SQL implementation of the onair services on database/sql, for
// SQLite, PostgreSQL and MySQL/MariaDB: UserService (onair.UserService and
// onair.AccountService), SessionService, StreamKeyService, ChannelService
// (onair.ChannelService and onair.PlatformChannelService), ChatService, CommentService,
// NotificationService and SettingsService.
//
// A DB is opened from a DSN:
//   - "sqlite:PATH", a bare PATH or ":memory:" give SQLite (modernc.org/sqlite, pure Go)
//     in WAL mode with foreign keys on and a busy timeout, so a CLI can write beside a
//     running server;
//   - "postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=disable&search_path=SCHEMA" (or
//     postgresql://) gives PostgreSQL through pgx's database/sql driver, with libpq's
//     parameters;
//   - "mysql://USER:PASSWORD@HOST[:PORT]/DB?PARAMS" gives MySQL or MariaDB through
//     go-sql-driver/mysql, converted to its "USER:PASSWORD@tcp(HOST:PORT)/DB?PARAMS"
//     (see parseMySQLDSN). "mysql://USER:PASSWORD@/DB?socket=PATH" uses a Unix socket,
//     and the driver's own format after "mysql://" is accepted as it is.
//
// Errors of Open never quote the DSN, which may hold a password.
//
// Migrations are embedded per dialect under migrations/DIALECT/ and run with goose at
// Open. Queries are written once in portable SQL with `?` placeholders; what differs
// (placeholders, RETURNING, upserts, case-insensitive LIKE, unique violations) goes
// through the dialect.
//
// Services check authorisation from the actor they are given: nil is an anonymous
// visitor, and a banned actor may do nothing.
//
// Timestamps are stored as integer Unix milliseconds (BIGINT) in UTC, which compare and
// sort the same way on every database; times read back are in UTC with millisecond
// precision.
//
// Session and API tokens are 32 random bytes in base64url; only their SHA-256 is stored.
//
// Stream keys are stored twice: as the hex SHA-256 of the key, by which they are looked
// up, and encrypted with AES-256-GCM under a key derived from DB.Secret, so that their
// owner can see them again. Passwords are hashed with argon2id in the PHC string format.
// No secret is ever logged or put into an error message.
package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations
var migrationFS embed.FS

// DefaultSessionLife is the default of DB.SessionLife.
const DefaultSessionLife = 30 * 24 * time.Hour

// Pool limits of network databases (PostgreSQL, MySQL). MySQL servers close idle
// connections after wait_timeout, so connections are recycled well before.
const (
	maxOpenConns    = 20
	maxIdleConns    = 10
	connMaxLifetime = 3 * time.Minute
)

// migrateAttempts bounds how often Open retries migrations that failed because another
// process applied them at the same time.
const migrateAttempts = 3

// DB is a connection pool to the database. Set its fields, then call Open.
type DB struct {
	// DSN is "sqlite:PATH", a bare PATH, or ":memory:" (one connection, for tests).
	// The parent directory of a SQLite file is created when missing.
	DSN string

	// Secret is 32 bytes that encrypt stream keys at rest (see ReadOrCreateSecret).
	// Required.
	Secret []byte

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// Logger receives lifecycle messages. Default: discard.
	Logger *slog.Logger

	// SessionLife is how long a browser session lasts. Default: DefaultSessionLife.
	SessionLife time.Duration

	db      *sql.DB
	dialect *dialect
	aead    cipher.AEAD
}

// Open opens the database, applies the connection settings and runs the pending
// migrations.
func (db *DB) Open(ctx context.Context) (err error) {
	if db.db != nil {
		return errors.New("open store: already open")
	}
	if db.Now == nil {
		db.Now = time.Now
	}
	if db.Logger == nil {
		db.Logger = slog.New(slog.DiscardHandler)
	}
	if db.SessionLife <= 0 {
		db.SessionLife = DefaultSessionLife
	}
	if db.aead, err = newKeyCipher(db.Secret); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	t, err := parseDSN(db.DSN)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	db.dialect = t.dialect
	if t.path != "" {
		if err := createPrivate(t.path); err != nil {
			return fmt.Errorf("open store: %w", err)
		}
	}

	var sqldb *sql.DB
	if t.connector != nil {
		sqldb = sql.OpenDB(t.connector)
		sqldb.SetMaxOpenConns(maxOpenConns)
		sqldb.SetMaxIdleConns(maxIdleConns)
		sqldb.SetConnMaxLifetime(connMaxLifetime)
	} else if sqldb, err = sql.Open(t.dialect.driver, t.dsn); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if t.memory {
		// Every connection to ":memory:" is a database of its own: keep exactly one.
		sqldb.SetMaxOpenConns(1)
		sqldb.SetMaxIdleConns(1)
		sqldb.SetConnMaxLifetime(0)
		sqldb.SetConnMaxIdleTime(0)
	}
	defer func() {
		if err != nil {
			sqldb.Close()
		}
	}()
	if err := sqldb.PingContext(ctx); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if err := db.migrate(ctx, sqldb); err != nil {
		return fmt.Errorf("open store: migrate: %w", err)
	}
	db.db = sqldb
	return nil
}

// migrate runs the pending migrations of the dialect. Each migration runs in a
// transaction and is recorded in goose_db_version, so a crash leaves either all or none
// of it (on MySQL, whose DDL is not transactional, a crash within a migration needs a
// hand), and no migration runs twice. PostgreSQL and MySQL servers shared by several
// processes (nodes, a CLI) are locked for the duration; on SQLite, when two processes
// migrate the same file at once, the loser's migration fails, and it then finds nothing
// pending and succeeds.
func (db *DB) migrate(ctx context.Context, sqldb *sql.DB) (err error) {
	fsys, err := fs.Sub(migrationFS, "migrations/"+db.dialect.name)
	if err != nil {
		return err
	}
	unlock, err := db.dialect.lockMigrations(ctx, sqldb)
	if err != nil {
		return err
	}
	defer func() {
		if uerr := unlock(); err == nil {
			err = uerr
		}
	}()
	var lastErr error
	for range migrateAttempts {
		// A new provider each time: a provider checks its version table only once.
		p, err := goose.NewProvider(db.dialect.goose, sqldb, fsys,
			goose.WithDisableGlobalRegistry(true),
			goose.WithSlog(db.Logger),
		)
		if err != nil {
			return err
		}
		results, err := p.Up(ctx)
		for _, r := range results {
			if r.Error == nil {
				db.Logger.InfoContext(ctx, "migration applied",
					"version", r.Source.Version, "duration", r.Duration)
			}
		}
		if err == nil {
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return err
		}
		if pending, perr := p.HasPending(ctx); perr == nil && !pending {
			return nil
		}
	}
	return lastErr
}

// createPrivate creates the database file with mode 0600 (and its directory with 0700)
// when missing, so that it and the -wal and -shm files SQLite derives from it are
// private: they hold password hashes and encrypted stream keys.
func createPrivate(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return err
	}
	return f.Close()
}

// Close closes the database.
func (db *DB) Close() error {
	if db.db == nil {
		return nil
	}
	err := db.db.Close()
	db.db = nil
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// SQL returns the underlying pool, for statistics. It is nil before Open.
func (db *DB) SQL() *sql.DB { return db.db }

// Dialect returns the kind of database: "sqlite", "postgres" or "mysql" ("" before Open).
func (db *DB) Dialect() string {
	if db.dialect == nil {
		return ""
	}
	return db.dialect.name
}

// now returns the current time as stored: UTC, truncated to milliseconds.
func (db *DB) now() time.Time { return fromMillis(db.Now().UnixMilli()) }

// Rebind rewrites the `?` placeholders of query for the database (e.g. $1, $2 on
// PostgreSQL), for callers that run their own queries on SQL().
func (db *DB) Rebind(query string) string { return db.dialect.rebind(query) }

// q is Rebind, short for the many queries of the package.
func (db *DB) q(query string) string { return db.dialect.rebind(query) }

// withTx runs fn in a transaction, committing when fn returns nil.
func (db *DB) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// millis converts t to the stored form.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis converts a stored time back.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// nullMillis converts a nullable stored time back.
func nullMillis(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMillis(v.Int64)
	return &t
}
