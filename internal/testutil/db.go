package testutil

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // "mysql" driver for the admin connection
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for the admin connection
)

// requireDB skips the test when a database server is unreachable, or fails it when
// ONAIR_REQUIRE_DBS=1 (as in CI).
func requireDB(tb testing.TB, name string, err error) {
	tb.Helper()
	if os.Getenv("ONAIR_REQUIRE_DBS") == "1" {
		tb.Fatalf("%s is required (ONAIR_REQUIRE_DBS=1) but unreachable: %v", name, err)
	}
	tb.Skipf("%s unreachable: %v", name, err)
}

func uniqueName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// NewPostgresDSN returns an onair DSN for a fresh schema in the test PostgreSQL
// (ONAIR_TEST_PG_ADDR, default 127.0.0.1:5432, database test, trust auth), dropped at cleanup.
func NewPostgresDSN(tb testing.TB) string {
	tb.Helper()
	addr := envOr("ONAIR_TEST_PG_ADDR", "127.0.0.1:5432")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var lastErr error
	for _, user := range []string{"postgres", "root"} {
		base := fmt.Sprintf("postgres://%s@%s/test?sslmode=disable&connect_timeout=3", user, addr)
		db, err := sql.Open("pgx", base)
		if err == nil {
			err = db.PingContext(ctx)
		}
		if err != nil {
			lastErr = err
			if db != nil {
				db.Close()
			}
			continue
		}
		name := uniqueName()
		if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
			db.Close()
			tb.Fatalf("create schema: %v", err)
		}
		tb.Cleanup(func() {
			_, _ = db.ExecContext(context.Background(), "DROP SCHEMA "+name+" CASCADE")
			db.Close()
		})
		return fmt.Sprintf("postgres://%s@%s/test?sslmode=disable&search_path=%s", user, addr, name)
	}
	requireDB(tb, "PostgreSQL", lastErr)
	return ""
}

// NewMySQLDSN returns an onair DSN for a fresh database in the test MariaDB/MySQL
// (ONAIR_TEST_MYSQL_ADDR, default 127.0.0.1:3306, root without password), dropped at cleanup.
func NewMySQLDSN(tb testing.TB) string {
	tb.Helper()
	addr := envOr("ONAIR_TEST_MYSQL_ADDR", "127.0.0.1:3306")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/test?timeout=3s", addr))
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		requireDB(tb, "MariaDB/MySQL", err)
		return ""
	}
	name := uniqueName()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		db.Close()
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), "DROP DATABASE "+name)
		db.Close()
	})
	return fmt.Sprintf("mysql://root@%s/%s", addr, name)
}
