package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	require.NoError(t, c.Validate())
	require.Equal(t, "sqlite:onair-data/onair.db", c.DB)
	require.Equal(t, ":1935", c.RTMPAddr)
	require.Equal(t, ":8080", c.HTTPAddr)
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "onair.toml")
	require.NoError(t, os.WriteFile(file, []byte(`
data = "/var/lib/onair"
grace_period = "5s"
stat_allow = ["10.0.0.0/8"]

[[webhooks]]
url = "https://hooks.example.org/onair"
secret = "s3cret"
events = ["stream.started"]

[publish_auth]
url = "http://127.0.0.1:9000/on_publish"
fail_open = true
`), 0o600))
	c := Default()
	require.NoError(t, Load(&c, file, []string{"ONAIR_HTTP_ADDR=:9090", "ONAIR_STAT_ALLOW=127.0.0.0/8, ::1/128", "HOME=/root"}))
	require.NoError(t, c.Validate())
	require.Equal(t, "/var/lib/onair", c.Data)
	require.Equal(t, 5*time.Second, c.GracePeriod.D())
	require.Equal(t, ":9090", c.HTTPAddr)
	require.Equal(t, []string{"127.0.0.0/8", "::1/128"}, c.StatAllow)
	require.Len(t, c.Webhooks, 1)
	require.Equal(t, []string{"stream.started"}, c.Webhooks[0].Events)
	require.True(t, c.PublishAuth.FailOpen)
	require.Equal(t, 3*time.Second, c.PublishAuth.Timeout.D()) // default kept
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "onair.toml")
	require.NoError(t, os.WriteFile(file, []byte("rtmp_adr = \":1935\"\n"), 0o600))
	c := Default()
	require.ErrorContains(t, Load(&c, file, nil), "unknown keys: rtmp_adr")

	c = Default()
	require.ErrorContains(t, Load(&c, "", []string{"ONAIR_GRACE_PERIOD=later"}), "ONAIR_GRACE_PERIOD")
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := Default()
	c.RTMPAddr = "1935"
	c.LogLevel = "loud"
	c.HLSPlaylistSize = 1
	c.StatAllow = []string{"everyone"}
	c.Webhooks = []Webhook{{URL: "ftp://x"}}
	c.DB = "oracle://x"
	err := c.Validate()
	for _, want := range []string{"rtmp_addr", "log_level", "hls_playlist_size", "stat_allow", "webhooks[0].url", "webhooks[0].secret", "db:"} {
		require.ErrorContains(t, err, want)
	}
}

func TestTranscode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "onair.toml")
	require.NoError(t, os.WriteFile(file, []byte(`
[transcode]
ladder = ["480p@900k", "240p", "audio@96k"]
encoder = "h264_nvenc"
`), 0o600))
	c := Default()
	require.NoError(t, Load(&c, file, []string{"ONAIR_TRANSCODE_ENABLED=true"}))
	require.NoError(t, c.Validate())
	require.True(t, c.Transcode.Enabled)
	require.Equal(t, []Rung{{Name: "480p", Height: 480, Kbps: 900}, {Name: "240p", Height: 240}, {Name: "audio", Kbps: 96}},
		c.Transcode.Ladder)
	require.Equal(t, "h264_nvenc", c.Transcode.Encoder)
	require.Equal(t, "veryfast", c.Transcode.Preset) // default kept

	cases := []struct{ in, err string }{
		{"720", `"720" is not a rendition`},
		{"721p", `"721p" is not a rendition`},
		{"0720p", `"0720p" is not a rendition`},
		{"4320p", `"4320p" is not a rendition`},
		{"720p@fast", `bit rate "fast"`},
		{"audio@1k", `bit rate "1k"`},
	}
	for _, ca := range cases {
		t.Run(ca.in, func(t *testing.T) {
			_, err := ParseRung(ca.in)
			require.ErrorContains(t, err, ca.err)
		})
	}

	c = Default()
	c.Transcode.Encoder = "x265"
	c.Transcode.Ladder = append(c.Transcode.Ladder, Rung{Name: "720p", Height: 720})
	err := c.Validate()
	require.ErrorContains(t, err, `transcode.encoder: "x265"`)
	require.ErrorContains(t, err, "transcode.ladder: 720p is listed twice")
}
