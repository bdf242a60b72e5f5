// Package config holds onair's configuration: defaults, overridden by a TOML file, then by
// ONAIR_* environment variables, then by command-line flags (applied by the app).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration.
type Config struct {
	// Data is the directory for the SQLite database, the secret key and recordings.
	Data string `toml:"data"`
	// DB is the database DSN: "sqlite:PATH" (default sqlite:DATA/onair.db), "postgres://…" or "mysql://…".
	DB string `toml:"db"`
	// RTMPAddr is the RTMP listen address.
	RTMPAddr string `toml:"rtmp_addr"`
	// HTTPAddr is the HTTP listen address.
	HTTPAddr string `toml:"http_addr"`
	// PublicRTMPURL, when set, is the RTMP server URL shown to broadcasters (e.g. rtmp://live.example.org/live).
	// Empty: derived from the host name in each HTTP request.
	PublicRTMPURL string `toml:"public_rtmp_url"`
	// SiteName is shown in page titles.
	SiteName string `toml:"site_name"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `toml:"log_format"`
	// RTMPWriteMerge is how long an RTMP player waits after a write before the next one, so
	// that it sends fewer, larger writes (SRS's "merged write"). 0 writes every unit at once.
	RTMPWriteMerge Duration `toml:"rtmp_write_merge"`
	// GracePeriod is how long a live stream waits for its publisher to reconnect.
	GracePeriod Duration `toml:"grace_period"`
	// HLSSegmentDuration is the target duration of live HLS segments.
	HLSSegmentDuration Duration `toml:"hls_segment_duration"`
	// HLSPlaylistSize is the number of segments in a live playlist.
	HLSPlaylistSize int `toml:"hls_playlist_size"`
	// ThumbnailInterval is the time between two thumbnails of a live stream (made with
	// ffmpeg when it is on PATH). 0 turns live thumbnails off.
	ThumbnailInterval Duration `toml:"thumbnail_interval"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// RecordingsMaxAge deletes recordings older than this (0: keep them).
	RecordingsMaxAge Duration `toml:"recordings_max_age"`
	// RecordingsMaxMB bounds all recordings of the site, in MiB (0: no bound); the oldest go first.
	RecordingsMaxMB int `toml:"recordings_max_mb"`
	// RecordingsUserQuotaMB bounds each user's recordings, in MiB (0: no bound).
	RecordingsUserQuotaMB int `toml:"recordings_user_quota_mb"`
	// RecordingMinFreeMB stops a recording when the disk has less free space than this, in MiB.
	RecordingMinFreeMB int `toml:"recording_min_free_mb"`
	// StatAllow lists the networks (CIDR) that may read /stat and /metrics without signing
	// in; site admins always may. Default: loopback only.
	StatAllow []string `toml:"stat_allow"`
	// Webhooks are HTTP endpoints that receive signed events (file only).
	Webhooks []Webhook `toml:"webhooks"`
	// PublishAuth, when its URL is set, is asked before a publish starts (file only).
	PublishAuth PublishAuth `toml:"publish_auth"`
}

// Webhook is one endpoint that receives events.
type Webhook struct {
	URL    string `toml:"url"`
	Secret string `toml:"secret"`
	// Events to send; empty means all: stream.started, stream.stopped, follow, chat.message.
	Events []string `toml:"events"`
}

// PublishAuth is the publish authorisation callback (like nginx-rtmp's on_publish).
type PublishAuth struct {
	URL     string   `toml:"url"`
	Secret  string   `toml:"secret"`
	Timeout Duration `toml:"timeout"`
	// FailOpen allows publishing when the callback times out or fails (default: refuse).
	FailOpen bool `toml:"fail_open"`
}

// Default returns the defaults: everything onair needs to run with no file.
func Default() Config {
	return Config{
		Data:               "onair-data",
		RTMPAddr:           ":1935",
		HTTPAddr:           ":8080",
		SiteName:           "onair",
		LogLevel:           "info",
		LogFormat:          "text",
		RTMPWriteMerge:     Duration(100 * time.Millisecond),
		GracePeriod:        Duration(10 * time.Second),
		HLSSegmentDuration: Duration(time.Second),
		HLSPlaylistSize:    6,
		ThumbnailInterval:  Duration(10 * time.Second),
		ShutdownTimeout:    Duration(10 * time.Second),
		StatAllow:          []string{"127.0.0.0/8", "::1/128"},
		RecordingMinFreeMB: 1024,
		PublishAuth:        PublishAuth{Timeout: Duration(3 * time.Second)},
	}
}

// Load applies the TOML file at path (when path is not empty) and then the environment
// (ONAIR_DATA, ONAIR_DB, ONAIR_RTMP_ADDR, … : ONAIR_ + the upper-cased TOML key) over c.
func Load(c *Config, path string, environ []string) error {
	if path != "" {
		md, err := toml.DecodeFile(path, c)
		if err != nil {
			return fmt.Errorf("read config %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			return fmt.Errorf("read config %s: unknown keys: %s", path, strings.Join(keys, ", "))
		}
	}
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "ONAIR_") {
			env[k] = v
		}
	}
	var errs []error
	for _, f := range c.fields() {
		v, ok := env["ONAIR_"+strings.ToUpper(f.key)]
		if !ok {
			continue
		}
		if err := f.set(v); err != nil {
			errs = append(errs, fmt.Errorf("ONAIR_%s: %w", strings.ToUpper(f.key), err))
		}
	}
	return errors.Join(errs...)
}

// Set sets the field with the given TOML key from a string (used for flags).
func (c *Config) Set(key, value string) error {
	for _, f := range c.fields() {
		if f.key == key {
			return f.set(value)
		}
	}
	return fmt.Errorf("unknown setting %q", key)
}

// Validate checks every field and returns one error listing every bad one. It also fills
// derived defaults (DB from Data).
func (c *Config) Validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("data: must not be empty"))
	}
	if c.DB == "" {
		c.DB = "sqlite:" + filepath.Join(c.Data, "onair.db")
	}
	if !strings.HasPrefix(c.DB, "sqlite:") && !strings.HasPrefix(c.DB, "postgres://") &&
		!strings.HasPrefix(c.DB, "postgresql://") && !strings.HasPrefix(c.DB, "mysql://") {
		errs = append(errs, errors.New("db: must start with sqlite:, postgres:// or mysql://"))
	}
	for _, a := range []struct{ key, v string }{{"rtmp_addr", c.RTMPAddr}, {"http_addr", c.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", a.key, a.v))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format: %q is not text or json", c.LogFormat))
	}
	for _, v := range []struct {
		key string
		n   int
	}{{"recordings_max_mb", c.RecordingsMaxMB}, {"recordings_user_quota_mb", c.RecordingsUserQuotaMB}, {"recording_min_free_mb", c.RecordingMinFreeMB}} {
		if v.n < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", v.key))
		}
	}
	if c.RecordingsMaxAge < 0 {
		errs = append(errs, errors.New("recordings_max_age: must not be negative"))
	}
	if c.RTMPWriteMerge < 0 || c.RTMPWriteMerge > Duration(time.Second) {
		errs = append(errs, errors.New("rtmp_write_merge: must be between 0 and 1s"))
	}
	if c.GracePeriod < 0 {
		errs = append(errs, errors.New("grace_period: must not be negative"))
	}
	if c.HLSSegmentDuration < Duration(200*time.Millisecond) || c.HLSSegmentDuration > Duration(30*time.Second) {
		errs = append(errs, errors.New("hls_segment_duration: must be between 200ms and 30s"))
	}
	if c.HLSPlaylistSize < 3 || c.HLSPlaylistSize > 100 {
		errs = append(errs, errors.New("hls_playlist_size: must be between 3 and 100"))
	}
	if c.ThumbnailInterval != 0 && c.ThumbnailInterval < Duration(100*time.Millisecond) {
		errs = append(errs, errors.New("thumbnail_interval: must be 0 (off) or at least 100ms"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdown_timeout: must be positive"))
	}
	for _, n := range c.StatAllow {
		if _, err := netip.ParsePrefix(n); err != nil {
			errs = append(errs, fmt.Errorf("stat_allow: %q is not a network like 10.0.0.0/8", n))
		}
	}
	for i, w := range c.Webhooks {
		if !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
			errs = append(errs, fmt.Errorf("webhooks[%d].url: must start with http:// or https://", i))
		}
		if w.Secret == "" {
			errs = append(errs, fmt.Errorf("webhooks[%d].secret: must not be empty", i))
		}
	}
	if c.PublishAuth.URL != "" && !strings.HasPrefix(c.PublishAuth.URL, "http://") && !strings.HasPrefix(c.PublishAuth.URL, "https://") {
		errs = append(errs, errors.New("publish_auth.url: must start with http:// or https://"))
	}
	if c.PublicRTMPURL != "" && !strings.HasPrefix(c.PublicRTMPURL, "rtmp://") && !strings.HasPrefix(c.PublicRTMPURL, "rtmps://") {
		errs = append(errs, errors.New("public_rtmp_url: must start with rtmp:// or rtmps://"))
	}
	return errors.Join(errs...)
}

type field struct {
	key string
	set func(string) error
}

func (c *Config) fields() []field {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	dur := func(p *Duration) func(string) error { return p.parse }
	num := func(p *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%q is not an integer", v)
			}
			*p = n
			return nil
		}
	}
	return []field{
		{"data", str(&c.Data)},
		{"db", str(&c.DB)},
		{"rtmp_addr", str(&c.RTMPAddr)},
		{"http_addr", str(&c.HTTPAddr)},
		{"public_rtmp_url", str(&c.PublicRTMPURL)},
		{"site_name", str(&c.SiteName)},
		{"log_level", str(&c.LogLevel)},
		{"log_format", str(&c.LogFormat)},
		{"rtmp_write_merge", dur(&c.RTMPWriteMerge)},
		{"grace_period", dur(&c.GracePeriod)},
		{"hls_segment_duration", dur(&c.HLSSegmentDuration)},
		{"hls_playlist_size", num(&c.HLSPlaylistSize)},
		{"thumbnail_interval", dur(&c.ThumbnailInterval)},
		{"shutdown_timeout", dur(&c.ShutdownTimeout)},
		{"recordings_max_age", dur(&c.RecordingsMaxAge)},
		{"recordings_max_mb", num(&c.RecordingsMaxMB)},
		{"recordings_user_quota_mb", num(&c.RecordingsUserQuotaMB)},
		{"recording_min_free_mb", num(&c.RecordingMinFreeMB)},
		{"stat_allow", func(v string) error { c.StatAllow = splitList(v); return nil }},
	}
}

// Keys returns every setting's TOML key, in a stable order.
func (c *Config) Keys() []string {
	fs := c.fields()
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.key
	}
	return out
}

// splitList splits a comma-separated env value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
