package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"
)

// The suite runs on SQLite always, and on PostgreSQL and MariaDB/MySQL when their servers
// answer at the addresses below (overridable for other machines). With
// ONAIR_REQUIRE_DBS=1 (CI) a server that does not answer fails the suite instead. Each
// test gets its own PostgreSQL schema or MySQL database, dropped at its end.
const (
	requireDBsEnv = "ONAIR_REQUIRE_DBS"
	// pgHostEnv and mysqlHostEnv override the servers' host:port.
	pgHostEnv    = "ONAIR_TEST_PG_ADDR"
	mysqlHostEnv = "ONAIR_TEST_MYSQL_ADDR"
)

// pgUsers are tried in turn, with trust authentication, on database "test".
var pgUsers = []string{"postgres", "root"}

// backend is a database the suite runs on.
type backend struct {
	name string
	// unavailable says why the backend cannot run ("" when it can).
	unavailable string
	// newDB returns a new, empty database that lives as long as tb.
	newDB func(tb testing.TB) testDB
}

// testDB is a database of one test.
type testDB struct {
	// dsn is for store.DB.
	dsn string
	// driver and raw open it with database/sql directly.
	driver, raw string
}

// newDSN returns the DSN of a new, empty database that lives as long as tb.
func (b backend) newDSN(tb testing.TB) string { return b.newDB(tb).dsn }

// migrations opens tdb with database/sql (closed with tb) and returns it with a goose
// provider of the backend's migrations on it, to move the schema up or down by hand.
func (b backend) migrations(tb testing.TB, tdb testDB) (*goose.Provider, *sql.DB) {
	tb.Helper()
	raw, err := sql.Open(tdb.driver, tdb.raw)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = raw.Close() })
	dialects := map[string]goose.Dialect{"sqlite": goose.DialectSQLite3, "postgres": goose.DialectPostgres, "mysql": goose.DialectMySQL}
	p, err := goose.NewProvider(dialects[b.name], raw, os.DirFS("migrations/"+b.name), goose.WithDisableGlobalRegistry(true))
	require.NoError(tb, err)
	return p, raw
}

// servers holds the admin connections to the database servers, opened once.
var servers struct {
	once         sync.Once
	pg, mysql    *sql.DB
	pgUser       string
	pgAddr       string
	mysqlAddr    string
	pgErr, myErr string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func connectServers() {
	servers.pgAddr = envOr(pgHostEnv, "127.0.0.1:5432")
	servers.mysqlAddr = envOr(mysqlHostEnv, "127.0.0.1:3306")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	servers.pgErr = "no user could connect"
	for _, user := range pgUsers {
		db, err := sql.Open("pgx", fmt.Sprintf("postgres://%s@%s/test?sslmode=disable&connect_timeout=3", user, servers.pgAddr))
		if err == nil {
			err = db.PingContext(ctx)
		}
		if err != nil {
			servers.pgErr = err.Error()
			if db != nil {
				db.Close()
			}
			continue
		}
		servers.pg, servers.pgUser, servers.pgErr = db, user, ""
		break
	}

	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/test?timeout=3s", servers.mysqlAddr))
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		servers.myErr = err.Error()
		if db != nil {
			db.Close()
		}
		return
	}
	servers.mysql = db
}

// closeServers closes the admin connections.
func closeServers() {
	if servers.pg != nil {
		servers.pg.Close()
	}
	if servers.mysql != nil {
		servers.mysql.Close()
	}
}

// backends returns the databases the suite runs on.
func backends() []backend {
	servers.once.Do(connectServers)
	return []backend{
		{name: "sqlite", newDB: func(tb testing.TB) testDB {
			path := filepath.Join(tb.TempDir(), "onair.db")
			return testDB{dsn: "sqlite:" + path, driver: "sqlite", raw: path + "?_pragma=foreign_keys(1)"}
		}},
		{name: "postgres", unavailable: servers.pgErr, newDB: newPostgresDB},
		{name: "mysql", unavailable: servers.myErr, newDB: newMySQLDB},
	}
}

// uniqueName returns a new schema or database name.
func uniqueName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

func newPostgresDB(tb testing.TB) testDB {
	tb.Helper()
	name := uniqueName()
	_, err := servers.pg.ExecContext(tb.Context(), `CREATE SCHEMA `+name)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_, err := servers.pg.ExecContext(context.Background(), `DROP SCHEMA `+name+` CASCADE`)
		require.NoError(tb, err)
	})
	dsn := fmt.Sprintf("postgres://%s@%s/test?sslmode=disable&search_path=%s", servers.pgUser, servers.pgAddr, name)
	return testDB{dsn: dsn, driver: "pgx", raw: dsn}
}

func newMySQLDB(tb testing.TB) testDB {
	tb.Helper()
	name := uniqueName()
	_, err := servers.mysql.ExecContext(tb.Context(), `CREATE DATABASE `+name+` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_, err := servers.mysql.ExecContext(context.Background(), `DROP DATABASE `+name)
		require.NoError(tb, err)
	})
	return testDB{
		dsn:    fmt.Sprintf("mysql://root@%s/%s", servers.mysqlAddr, name),
		driver: "mysql",
		raw:    fmt.Sprintf("root@tcp(%s)/%s", servers.mysqlAddr, name),
	}
}

// forEachBackend runs fn as a subtest on every backend, skipping (or, with
// ONAIR_REQUIRE_DBS=1, failing) those whose server does not answer.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			if b.unavailable != "" {
				if os.Getenv(requireDBsEnv) == "1" {
					t.Fatalf("%s is required (%s=1) but unavailable: %s", b.name, requireDBsEnv, b.unavailable)
				}
				t.Skipf("%s unavailable: %s", b.name, b.unavailable)
			}
			fn(t, b)
		})
	}
}

// sqliteDSN returns the DSN of a new SQLite file in a temporary directory.
func sqliteDSN(tb testing.TB) string {
	return "sqlite:" + filepath.Join(tb.TempDir(), "onair.db")
}

func TestBackendsReachable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := MustOpenDSN(t, b.newDSN(t))
		require.NoError(t, db.SQL().PingContext(t.Context()))
		require.Equal(t, b.name, db.Dialect())
	})
}
