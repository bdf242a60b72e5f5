package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClusterSettings(t *testing.T) {
	t.Run("single node ignores them", func(t *testing.T) {
		c := Default()
		require.NoError(t, c.Validate())
		require.False(t, c.Clustered())
		require.Empty(t, c.Node)
	})

	t.Run("file < env, defaults from listen addresses", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "onair.toml")
		require.NoError(t, os.WriteFile(file, []byte(`
db = "postgres://onair@db/onair"
nats = "nats://nats1:4222"
node = "from-file"
rtmp_addr = "10.0.0.5:1935"
advertise_http = "10.0.0.5:8080"
`), 0o600))
		c := Default()
		require.NoError(t, Load(&c, file, []string{"ONAIR_NODE=edge-2"}))
		require.NoError(t, c.Set("nats", "nats://a:4222,nats://b:4222"))
		require.NoError(t, c.Validate())
		require.True(t, c.Clustered())
		require.Equal(t, "edge-2", c.Node)
		require.Equal(t, "nats://a:4222,nats://b:4222", c.NATS)
		require.Equal(t, "10.0.0.5:1935", c.AdvertiseRTMP, "taken from rtmp_addr")
		require.Equal(t, "10.0.0.5:8080", c.AdvertiseHTTP)
	})

	t.Run("node defaults to the host name", func(t *testing.T) {
		c := Default()
		c.DB, c.NATS = "mysql://root@db/onair", "nats://127.0.0.1:4222"
		c.AdvertiseRTMP, c.AdvertiseHTTP = "a:1935", "a:8080"
		err := c.Validate()
		if h, _ := os.Hostname(); nodeName.MatchString(h) {
			require.NoError(t, err)
			require.Equal(t, h, c.Node)
		}
	})

	t.Run("errors", func(t *testing.T) {
		c := Default()
		c.NATS = "http://x"
		c.Node = "Bad Name"
		c.Cluster = "a.b"
		err := c.Validate()
		require.Error(t, err)
		for _, want := range []string{"nats: must be nats://", "db: a cluster", "node: \"Bad Name\"", "cluster: \"a.b\"", "advertise_rtmp: must be set", "advertise_http: must be set"} {
			require.Contains(t, err.Error(), want)
		}
		c = Default()
		c.DB, c.NATS, c.Node = "postgres://x/y", "nats://n:4222", "a"
		c.AdvertiseRTMP, c.AdvertiseHTTP = "nohost", ":8080"
		err = c.Validate()
		require.ErrorContains(t, err, `advertise_rtmp: "nohost" is not host:port`)
		require.ErrorContains(t, err, `advertise_http: ":8080" is not host:port`)
	})
}
