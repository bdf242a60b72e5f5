package store

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRebind(t *testing.T) {
	cases := []struct {
		name  string
		query string
		want  string
	}{
		{name: "none", query: `SELECT 1`, want: `SELECT 1`},
		{name: "two", query: `SELECT a FROM t WHERE b = ? AND c = ?`, want: `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{name: "quoted", query: `SELECT '?', "?", ` + "`?`" + ` FROM t WHERE b = ?`, want: `SELECT '?', "?", ` + "`?`" + ` FROM t WHERE b = $1`},
		{name: "escaped quote", query: `SELECT 'it''s ?' WHERE a = ?`, want: `SELECT 'it''s ?' WHERE a = $1`},
		{name: "values", query: `INSERT INTO t (a, b) VALUES (?, ?)`, want: `INSERT INTO t (a, b) VALUES ($1, $2)`},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			require.Equal(t, ca.want, dialectPostgres.rebind(ca.query))
			require.Equal(t, ca.query, dialectSQLite.rebind(ca.query))
			require.Equal(t, ca.query, dialectMySQL.rebind(ca.query))
		})
	}
}

func TestParseDSN(t *testing.T) {
	cases := []struct {
		name    string
		dsn     string
		dialect *dialect
		path    string
		memory  bool
		err     string
	}{
		{name: "sqlite scheme", dsn: "sqlite:/data/onair.db", dialect: dialectSQLite, path: "/data/onair.db"},
		{name: "sqlite slashes", dsn: "sqlite:///data/onair.db", dialect: dialectSQLite, path: "/data/onair.db"},
		{name: "relative", dsn: "sqlite:onair-data/onair.db", dialect: dialectSQLite, path: "onair-data/onair.db"},
		{name: "bare path", dsn: "onair.db", dialect: dialectSQLite, path: "onair.db"},
		{name: "file prefix", dsn: "file:x.db", dialect: dialectSQLite, path: "./file:x.db"},
		{name: "memory", dsn: ":memory:", dialect: dialectSQLite, memory: true},
		{name: "sqlite memory", dsn: "sqlite::memory:", dialect: dialectSQLite, memory: true},
		{name: "postgres", dsn: "postgres://u:p@localhost/onair", dialect: dialectPostgres},
		{name: "postgresql", dsn: "postgresql://localhost/onair", dialect: dialectPostgres},
		{name: "mysql", dsn: "mysql://u:p@tcp(localhost)/onair", dialect: dialectMySQL},
		{name: "empty", err: "dsn required"},
		{name: "unknown", dsn: "redis://x", err: `dsn: unknown scheme "redis"`},
		{name: "query", dsn: "sqlite:x.db?_pragma=foo", err: `dsn: sqlite path "x.db?_pragma=foo" contains '?'`},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			got, err := parseDSN(ca.dsn)
			if ca.err != "" {
				require.EqualError(t, err, ca.err)
				return
			}
			require.NoError(t, err)
			require.Same(t, ca.dialect, got.dialect)
			require.Equal(t, ca.path, got.path)
			require.Equal(t, ca.memory, got.memory)
		})
	}
}
