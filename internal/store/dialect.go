package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds what differs between the SQL databases the store supports. Queries are
// written once, with `?` placeholders and portable SQL; the dialect rebinds them, inserts
// rows, writes upserts and case-insensitive matches, and recognises unique violations.
//
// Portable SQL the queries rely on (checked by the suite on every backend): LIMIT ?
// OFFSET ?, COUNT(*), scalar subqueries, LOWER(), IN lists, LIKE with ESCAPE '!' (a
// backslash would need escaping in MySQL string literals but not in PostgreSQL ones),
// booleans passed and scanned as Go bools, and times as BIGINT Unix milliseconds.
type dialect struct {
	// name is also the directory of the dialect's migrations under migrations/.
	name string
	// driver is the database/sql driver name.
	driver string
	goose  goose.Dialect
	// dollar makes rebind number the placeholders ($1, $2, ...).
	dollar bool
	// returning makes insertID read the new id with RETURNING instead of LastInsertId.
	returning bool
}

var (
	dialectSQLite = &dialect{
		name:   "sqlite",
		driver: "sqlite",
		goose:  goose.DialectSQLite3,
	}
	dialectPostgres = &dialect{
		name:      "postgres",
		driver:    "pgx",
		goose:     goose.DialectPostgres,
		dollar:    true,
		returning: true,
	}
	dialectMySQL = &dialect{
		name:   "mysql",
		driver: "mysql",
		goose:  goose.DialectMySQL,
	}
)

// target is a parsed DSN: the dialect and how to connect.
type target struct {
	dialect *dialect
	// dsn is what is passed to sql.Open (SQLite).
	dsn string
	// connector connects to a network database (PostgreSQL, MySQL); nil for SQLite.
	connector driver.Connector
	// path is the database file for SQLite ("" in memory).
	path string
	// memory is true for an in-memory SQLite database.
	memory bool
}

// sqlitePragmas are applied by the modernc driver on every new connection. busy_timeout
// comes first (the driver sorts it first) so that the others wait for a lock instead of
// failing; _txlock=immediate takes the write lock at BEGIN, so two writers in WAL mode
// queue on busy_timeout instead of failing with SQLITE_BUSY when a read lock is upgraded.
const sqlitePragmas = "_pragma=busy_timeout(10000)" +
	"&_pragma=foreign_keys(1)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(NORMAL)" +
	"&_txlock=immediate"

// mysqlDialTimeout is the dial timeout of MySQL connections when the DSN sets none.
const mysqlDialTimeout = 10 * time.Second

// mysqlSQLMode is the sql_mode of MySQL connections when the DSN sets none: strict, so
// that a value that does not fit fails instead of being truncated.
const mysqlSQLMode = "'TRADITIONAL'"

// parseDSN parses "sqlite:PATH", a bare PATH, ":memory:", "postgres://...",
// "postgresql://..." and "mysql://...". Its errors never contain the DSN, which may hold
// a password.
func parseDSN(dsn string) (*target, error) {
	switch {
	case dsn == "":
		return nil, errors.New("dsn required")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return parsePostgresDSN(dsn)
	case strings.HasPrefix(dsn, "mysql://"):
		cfg, err := parseMySQLDSN(dsn)
		if err != nil {
			return nil, err
		}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, errors.New("dsn: bad mysql parameters")
		}
		return &target{dialect: dialectMySQL, connector: conn}, nil
	}

	path := dsn
	if rest, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		path = strings.TrimPrefix(rest, "//")
	} else if i := strings.Index(dsn, "://"); i >= 0 {
		return nil, fmt.Errorf("dsn: unknown scheme %q", dsn[:i])
	}
	switch {
	case path == "":
		return nil, errors.New("dsn: sqlite path required")
	case path == ":memory:":
		return &target{dialect: dialectSQLite, dsn: ":memory:?" + sqlitePragmas, memory: true}, nil
	case strings.ContainsRune(path, '?'):
		return nil, fmt.Errorf("dsn: sqlite path %q contains '?'", path)
	}
	// A name starting with "file:" would be read by SQLite as a URI.
	if strings.HasPrefix(path, "file:") {
		path = "." + string(filepath.Separator) + path
	}
	return &target{dialect: dialectSQLite, dsn: path + "?" + sqlitePragmas, path: path}, nil
}

// parsePostgresDSN parses a postgres:// URL with pgx, which accepts libpq's parameters
// (sslmode, connect_timeout, search_path, ...).
func parsePostgresDSN(dsn string) (*target, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's error may quote the DSN, password included.
		return nil, errors.New("dsn: malformed postgres URL")
	}
	return &target{dialect: dialectPostgres, connector: stdlib.GetConnector(*cfg)}, nil
}

// parseMySQLDSN converts a mysql:// URL to the driver's configuration:
//
//	mysql://USER:PASSWORD@HOST[:PORT]/DATABASE[?PARAMS]   (port 3306 by default)
//	mysql://USER:PASSWORD@/DATABASE?socket=/run/mysqld/mysqld.sock
//
// which is go-sql-driver's "USER:PASSWORD@tcp(HOST:PORT)/DATABASE?PARAMS". User and
// password are URL-decoded. PARAMS are the driver's own (tls, timeout, charset, ...,
// and system variables), except that parseTime and multiStatements are always false;
// sql_mode defaults to TRADITIONAL (strict) and the dial timeout to 10s. The driver's
// own format after the scheme ("mysql://user:pass@tcp(host:3306)/db") is accepted too.
func parseMySQLDSN(dsn string) (*mysql.Config, error) {
	rest := strings.TrimPrefix(dsn, "mysql://")
	var cfg *mysql.Config
	if native(rest) {
		c, err := mysql.ParseDSN(rest)
		if err != nil {
			return nil, errors.New("dsn: malformed mysql DSN")
		}
		cfg = c
	} else {
		u, err := url.Parse(dsn)
		if err != nil {
			// url.Error quotes the URL, password included.
			return nil, errors.New("dsn: malformed mysql URL")
		}
		q := u.Query()
		socket := q.Get("socket")
		q.Del("socket")
		c, err := mysql.ParseDSN("/?" + q.Encode())
		if err != nil {
			return nil, fmt.Errorf("dsn: bad mysql parameters: %w", err)
		}
		cfg = c
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		switch {
		case socket != "":
			cfg.Net, cfg.Addr = "unix", socket
		case u.Host != "":
			host := u.Host
			if u.Port() == "" {
				host = net.JoinHostPort(u.Hostname(), "3306")
			}
			cfg.Net, cfg.Addr = "tcp", host
		default:
			cfg.Net, cfg.Addr = "tcp", "127.0.0.1:3306"
		}
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
		if strings.Contains(cfg.DBName, "/") {
			return nil, errors.New("dsn: mysql database name contains '/'")
		}
	}
	if cfg.DBName == "" {
		return nil, errors.New("dsn: mysql database name required")
	}
	cfg.ParseTime = false
	cfg.MultiStatements = false
	if cfg.Timeout == 0 {
		cfg.Timeout = mysqlDialTimeout
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["sql_mode"]; !ok {
		cfg.Params["sql_mode"] = mysqlSQLMode
	}
	return cfg, nil
}

// native reports whether s (a DSN without its mysql:// scheme) is in go-sql-driver's own
// format, with the network in parentheses: "user:pass@tcp(host:port)/db" or
// "user:pass@unix(/path/to.sock)/db".
func native(s string) bool {
	for _, n := range []string{"tcp(", "tcp4(", "tcp6(", "unix("} {
		if strings.HasPrefix(s, n) || strings.Contains(s, "@"+n) {
			return true
		}
	}
	return false
}

// rebind rewrites the `?` placeholders of query for the dialect. It leaves question
// marks inside quoted strings and identifiers alone.
func (d *dialect) rebind(query string) string {
	if !d.dollar {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// insertID runs an INSERT (with `?` placeholders) and returns the id of the new row.
func (d *dialect) insertID(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	if d.returning {
		var id int64
		err := q.QueryRowContext(ctx, d.rebind(query+" RETURNING id"), args...).Scan(&id)
		return id, err
	}
	res, err := q.ExecContext(ctx, d.rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// upsert returns an INSERT of one row of cols into table (with `?` placeholders, not
// rebound) that updates the columns not in key when a row with the same key exists.
func (d *dialect) upsert(table string, key, cols []string) string {
	var set []string
	for _, c := range cols {
		if slices.Contains(key, c) {
			continue
		}
		if d == dialectMySQL {
			set = append(set, c+" = VALUES("+c+")")
		} else {
			set = append(set, c+" = excluded."+c)
		}
	}
	q := insertRow(table, cols)
	if d == dialectMySQL {
		return q + " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}
	return q + " ON CONFLICT (" + strings.Join(key, ", ") + ") DO UPDATE SET " + strings.Join(set, ", ")
}

// insertIgnore returns an INSERT of one row of cols into table (with `?` placeholders, not
// rebound) that does nothing when a row with the same key exists. Unlike MySQL's INSERT
// IGNORE, it still fails on other errors, such as a missing foreign key.
func (d *dialect) insertIgnore(table string, key, cols []string) string {
	q := insertRow(table, cols)
	if d == dialectMySQL {
		return q + " ON DUPLICATE KEY UPDATE " + key[0] + " = " + key[0]
	}
	return q + " ON CONFLICT (" + strings.Join(key, ", ") + ") DO NOTHING"
}

func insertRow(table string, cols []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + placeholders(len(cols)) + ")"
}

// placeholders returns n comma-separated `?`.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// likeEscapeChar escapes the LIKE wildcards of patterns built by containsPattern.
const likeEscapeChar = '!'

// containsPattern returns a LIKE pattern that matches strings containing s (lowercased)
// literally: the wildcards % and _ of s, and the escape character, are escaped.
func containsPattern(s string) string {
	var b strings.Builder
	b.WriteByte('%')
	for _, r := range strings.ToLower(s) {
		if r == '%' || r == '_' || r == likeEscapeChar {
			b.WriteRune(likeEscapeChar)
		}
		b.WriteRune(r)
	}
	b.WriteByte('%')
	return b.String()
}

// ilike returns a condition that col matches a pattern from containsPattern (one `?`)
// without regard to case. SQLite's LIKE ignores ASCII case already; PostgreSQL has ILIKE;
// MySQL columns here have a binary collation, so the column is lowercased.
func (d *dialect) ilike(col string) string {
	esc := " ESCAPE '" + string(likeEscapeChar) + "'"
	switch d {
	case dialectPostgres:
		return col + " ILIKE ?" + esc
	case dialectMySQL:
		return "LOWER(" + col + ") LIKE ?" + esc
	default:
		return col + " LIKE ?" + esc
	}
}

// forUpdate returns the clause that locks the rows a SELECT in a transaction reads until
// it ends, so that concurrent read-modify-write transactions queue instead of deadlocking
// on MySQL's gap locks. SQLite has none: its write transactions are serialised already
// (_txlock=immediate).
func (d *dialect) forUpdate() string {
	if d == dialectSQLite {
		return ""
	}
	return " FOR UPDATE"
}

// migrationLockTimeout bounds how long Open waits for another process's migrations.
const migrationLockTimeout = 5 * time.Minute

// lockMigrations takes a lock that serialises migrations of one database (one PostgreSQL
// schema, one MySQL database) across processes, on a connection of its own, and returns
// the function that releases it. SQLite needs none.
func (d *dialect) lockMigrations(ctx context.Context, sqldb *sql.DB) (unlock func() error, err error) {
	var lock, release string
	switch d {
	case dialectPostgres:
		lock = `SELECT pg_advisory_lock(hashtext('onair migrate ' || current_schema()))`
		release = `SELECT pg_advisory_unlock(hashtext('onair migrate ' || current_schema()))`
	case dialectMySQL:
		// Lock names are at most 64 characters.
		lock = fmt.Sprintf(`SELECT GET_LOCK(CONCAT('onair migrate ', SHA1(DATABASE())), %d)`, int(migrationLockTimeout.Seconds()))
		release = `SELECT RELEASE_LOCK(CONCAT('onair migrate ', SHA1(DATABASE())))`
	default:
		return func() error { return nil }, nil
	}
	conn, err := sqldb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	if d == dialectPostgres {
		// pg_advisory_lock returns void, after waiting as long as ctx lets it.
		_, err = conn.ExecContext(ctx, lock)
	} else {
		var got sql.NullInt64
		err = conn.QueryRowContext(ctx, lock).Scan(&got)
		if err == nil && got.Int64 != 1 {
			err = errors.New("timed out waiting for another process")
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	return func() error {
		// The lock goes with its session, so closing the connection releases it too; the
		// explicit release keeps a pooled connection from holding it.
		_, err := conn.ExecContext(context.WithoutCancel(ctx), release)
		if cerr := conn.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unlock migrations: %w", err)
		}
		return nil
	}, nil
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY constraint failure:
// SQLite's extended codes, PostgreSQL's SQLSTATE 23505 or MySQL's error 1062.
func (d *dialect) isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	return false
}

// inArgs returns the `?` list and arguments of an IN (...) over ids.
func inArgs(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return placeholders(len(ids)), args
}
