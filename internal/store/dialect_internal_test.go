package store

import (
	"strings"
	"testing"
	"time"

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
		{name: "mysql", dsn: "mysql://u:p@localhost/onair", dialect: dialectMySQL},
		{name: "mysql native", dsn: "mysql://u:p@tcp(localhost)/onair", dialect: dialectMySQL},
		{name: "postgres bad", dsn: "postgres://u:secret@localhost:x/onair", err: "dsn: malformed postgres URL"},
		{name: "mysql bad", dsn: "mysql://u:secret@local host/onair", err: "dsn: malformed mysql URL"},
		{name: "mysql bad native", dsn: "mysql://u:secret@tcp(localhost/onair", err: "dsn: malformed mysql DSN"},
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
			require.Equal(t, ca.dialect != dialectSQLite, got.connector != nil)
		})
	}
}

func TestParseMySQLDSN(t *testing.T) {
	cases := []struct {
		name   string
		dsn    string
		user   string
		passwd string
		net    string
		addr   string
		dbname string
		params map[string]string
		tls    bool
		err    string
	}{
		{name: "full", dsn: "mysql://onair:s3cret@db.example:3307/onair", user: "onair", passwd: "s3cret",
			net: "tcp", addr: "db.example:3307", dbname: "onair"},
		{name: "default port", dsn: "mysql://root@127.0.0.1/test", user: "root", net: "tcp", addr: "127.0.0.1:3306", dbname: "test"},
		{name: "ipv6", dsn: "mysql://root@[::1]/test", user: "root", net: "tcp", addr: "[::1]:3306", dbname: "test"},
		{name: "no host", dsn: "mysql://root@/test", user: "root", net: "tcp", addr: "127.0.0.1:3306", dbname: "test"},
		{name: "escaped password", dsn: "mysql://u:p%40ss%2Fw%3Ard@h:1/d", user: "u", passwd: "p@ss/w:rd", net: "tcp", addr: "h:1", dbname: "d"},
		{name: "socket", dsn: "mysql://u:p@/d?socket=/run/mysqld/mysqld.sock", user: "u", passwd: "p",
			net: "unix", addr: "/run/mysqld/mysqld.sock", dbname: "d"},
		{name: "params", dsn: "mysql://u@h/d?tls=true&parseTime=true&multiStatements=true&sql_mode=%27ANSI%27&wait_timeout=60",
			user: "u", net: "tcp", addr: "h:3306", dbname: "d", tls: true,
			params: map[string]string{"sql_mode": "'ANSI'", "wait_timeout": "60"}},
		{name: "native", dsn: "mysql://u:p@tcp(h:3310)/d?parseTime=true", user: "u", passwd: "p", net: "tcp", addr: "h:3310", dbname: "d"},
		{name: "native socket", dsn: "mysql://u:p@unix(/tmp/m.sock)/d", user: "u", passwd: "p", net: "unix", addr: "/tmp/m.sock", dbname: "d"},
		{name: "no database", dsn: "mysql://u:p@h/", err: "dsn: mysql database name required"},
		{name: "nested path", dsn: "mysql://u:p@h/a/b", err: "dsn: mysql database name contains '/'"},
		{name: "bad param", dsn: "mysql://u:p@h/d?parseTime=maybe", err: `dsn: bad mysql parameters: invalid bool value: maybe`},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			cfg, err := parseMySQLDSN(ca.dsn)
			if ca.err != "" {
				require.EqualError(t, err, ca.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, ca.user, cfg.User)
			require.Equal(t, ca.passwd, cfg.Passwd)
			require.Equal(t, ca.net, cfg.Net)
			require.Equal(t, ca.addr, cfg.Addr)
			require.Equal(t, ca.dbname, cfg.DBName)
			require.False(t, cfg.ParseTime)
			require.False(t, cfg.MultiStatements)
			require.Equal(t, ca.tls, cfg.TLS != nil)
			require.Equal(t, mysqlDialTimeout, cfg.Timeout)
			want := map[string]string{"sql_mode": mysqlSQLMode}
			for k, v := range ca.params {
				want[k] = v
			}
			require.Equal(t, want, cfg.Params)
			// The driver's own format round-trips.
			require.True(t, strings.Contains(cfg.FormatDSN(), "@"+cfg.Net+"("+cfg.Addr+")/"+cfg.DBName))
		})
	}
	cfg, err := parseMySQLDSN("mysql://u@h/d?timeout=2s")
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, cfg.Timeout)
}

func TestDialectStatements(t *testing.T) {
	key, cols := []string{"a", "b"}, []string{"a", "b", "c", "d"}
	require.Equal(t, "INSERT INTO t (a, b, c, d) VALUES (?, ?, ?, ?) ON CONFLICT (a, b) DO UPDATE SET c = excluded.c, d = excluded.d",
		dialectSQLite.upsert("t", key, cols))
	require.Equal(t, dialectSQLite.upsert("t", key, cols), dialectPostgres.upsert("t", key, cols))
	require.Equal(t, "INSERT INTO t (a, b, c, d) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE c = VALUES(c), d = VALUES(d)",
		dialectMySQL.upsert("t", key, cols))
	require.Equal(t, "INSERT INTO t (a, b, c, d) VALUES (?, ?, ?, ?) ON CONFLICT (a, b) DO NOTHING", dialectSQLite.insertIgnore("t", key, cols))
	require.Equal(t, "INSERT INTO t (a, b, c, d) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE a = a", dialectMySQL.insertIgnore("t", key, cols))
	require.Equal(t, "c.name LIKE ? ESCAPE '!'", dialectSQLite.ilike("c.name"))
	require.Equal(t, "c.name ILIKE ? ESCAPE '!'", dialectPostgres.ilike("c.name"))
	require.Equal(t, "LOWER(c.name) LIKE ? ESCAPE '!'", dialectMySQL.ilike("c.name"))
	require.Equal(t, "", dialectSQLite.forUpdate())
	require.Equal(t, " FOR UPDATE", dialectMySQL.forUpdate())
	require.Equal(t, "?, ?, ?", placeholders(3))
	require.Equal(t, "", placeholders(0))
}

var containsPatternCases = []struct{ in, want string }{
	{in: "abc", want: "%abc%"},
	{in: "ABC", want: "%abc%"},
	{in: "100%", want: "%100!%%"},
	{in: "a_b", want: "%a!_b%"},
	{in: "wow!", want: "%wow!!%"},
	{in: `back\slash`, want: `%back\slash%`},
	{in: "", want: "%%"},
}

func TestContainsPattern(t *testing.T) {
	for _, ca := range containsPatternCases {
		require.Equal(t, ca.want, containsPattern(ca.in), ca.in)
	}
}

// FuzzContainsPattern checks that the pattern's wildcards are only its first and last
// characters: every other %, _ and ! is escaped.
func FuzzContainsPattern(f *testing.F) {
	for _, ca := range containsPatternCases {
		f.Add(ca.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := containsPattern(s)
		require.True(t, strings.HasPrefix(p, "%") && strings.HasSuffix(p, "%"))
		inner := []rune(p[1 : len(p)-1])
		var unescaped []rune
		for i := 0; i < len(inner); i++ {
			r := inner[i]
			if r == likeEscapeChar {
				require.Less(t, i+1, len(inner), "dangling escape in %q", p)
				next := inner[i+1]
				require.Contains(t, []rune{'%', '_', likeEscapeChar}, next, "escaped %q in %q", next, p)
				unescaped = append(unescaped, next)
				i++
				continue
			}
			require.NotContains(t, []rune{'%', '_'}, r, "unescaped wildcard in %q", p)
			unescaped = append(unescaped, r)
		}
		require.Equal(t, strings.ToLower(s), string(unescaped))
	})
}
