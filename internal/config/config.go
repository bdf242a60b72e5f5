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
	// RelayLinger is how long an edge keeps pulling a stream from its origin node after
	// its last viewer left (cluster mode). 0: the default, 10 s.
	RelayLinger Duration `toml:"relay_linger"`
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
	// RecordingsS3, when its endpoint is set, stores recordings in S3 (see RecordingsS3).
	RecordingsS3 RecordingsS3 `toml:"recordings_s3"`

	// NATS, when set, runs this node in a cluster: the NATS server URL(s), comma-separated
	// (nats://host:4222). Empty: a single node with an in-process bus.
	NATS string `toml:"nats"`
	// Cluster names the cluster: it prefixes the NATS subjects and the stream directory's
	// bucket, so that several clusters (or test runs) can share NATS servers. Default: onair.
	Cluster string `toml:"cluster"`
	// Node is this node's unique name in the cluster. Default: the host name.
	Node string `toml:"node"`
	// AdvertiseRTMP is the host:port other nodes reach this node's RTMP server on.
	// Default: rtmp_addr, when it names a host.
	AdvertiseRTMP string `toml:"advertise_rtmp"`
	// AdvertiseHTTP is the host:port other nodes reach this node's HTTP server on.
	// Default: http_addr, when it names a host.
	AdvertiseHTTP string `toml:"advertise_http"`
	// Network hardening: TLS, HTTP timeouts and connection limits (see net.go).
	Net
	// Transcode is the adaptive bit rate ladder made by ffmpeg (file, or ONAIR_TRANSCODE_ENABLED).
	Transcode Transcode `toml:"transcode"`
}

// Transcode configures the transcoding ladder (see docs/transcoding.md).
type Transcode struct {
	// Enabled turns transcoding on for the site; each channel can still turn it off.
	Enabled bool `toml:"enabled"`
	// FFmpeg is the ffmpeg binary: a path, or a name looked up in PATH. Default: ffmpeg.
	FFmpeg string `toml:"ffmpeg"`
	// Ladder lists the renditions besides the source; video rungs not smaller than the
	// source are skipped. Default: 720p, 480p, 360p, audio.
	Ladder []Rung `toml:"ladder"`
	// Encoder is the H.264 encoder: libx264, h264_nvenc or h264_vaapi. A hardware encoder
	// that fails to start falls back to libx264. Default: libx264.
	Encoder string `toml:"encoder"`
	// Preset is the encoder preset (libx264: ultrafast … veryslow). Default: veryfast.
	Preset string `toml:"preset"`
	// VAAPIDevice is the render node for h264_vaapi. Default: /dev/dri/renderD128.
	VAAPIDevice string `toml:"vaapi_device"`
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
		RelayLinger:        Duration(10 * time.Second),
		HLSSegmentDuration: Duration(time.Second),
		HLSPlaylistSize:    6,
		ThumbnailInterval:  Duration(10 * time.Second),
		ShutdownTimeout:    Duration(10 * time.Second),
		StatAllow:          []string{"127.0.0.0/8", "::1/128"},
		RecordingMinFreeMB: 1024,
		Cluster:            "onair",
		PublishAuth:        PublishAuth{Timeout: Duration(3 * time.Second)},
		Net:                defaultNet(),
		Transcode: Transcode{
			FFmpeg:      "ffmpeg",
			Ladder:      []Rung{{Name: "720p", Height: 720}, {Name: "480p", Height: 480}, {Name: "360p", Height: 360}, {Name: "audio"}},
			Encoder:     "libx264",
			Preset:      "veryfast",
			VAAPIDevice: "/dev/dri/renderD128",
		},
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
	if c.RelayLinger < 0 || c.RelayLinger > Duration(time.Hour) {
		errs = append(errs, errors.New("relay_linger: must be between 0 (the default) and 1h"))
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
	errs = append(errs, c.validateCluster()...)
	if c.PublicRTMPURL != "" && !strings.HasPrefix(c.PublicRTMPURL, "rtmp://") && !strings.HasPrefix(c.PublicRTMPURL, "rtmps://") {
		errs = append(errs, errors.New("public_rtmp_url: must start with rtmp:// or rtmps://"))
	}
	errs = append(errs, c.RecordingsS3.validate()...)
	errs = append(errs, c.Net.validate()...)
	switch c.Transcode.Encoder {
	case "libx264", "h264_nvenc", "h264_vaapi":
	default:
		errs = append(errs, fmt.Errorf("transcode.encoder: %q is not libx264, h264_nvenc or h264_vaapi", c.Transcode.Encoder))
	}
	if c.Transcode.FFmpeg == "" {
		errs = append(errs, errors.New("transcode.ffmpeg: must not be empty"))
	}
	if strings.HasPrefix(c.Transcode.Preset, "-") {
		errs = append(errs, fmt.Errorf("transcode.preset: %q is not a preset name", c.Transcode.Preset))
	}
	seen := make(map[string]bool)
	for _, r := range c.Transcode.Ladder {
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("transcode.ladder: %s is listed twice", r.Name))
		}
		seen[r.Name] = true
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
	return append([]field{
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
		{"relay_linger", dur(&c.RelayLinger)},
		{"hls_segment_duration", dur(&c.HLSSegmentDuration)},
		{"hls_playlist_size", num(&c.HLSPlaylistSize)},
		{"thumbnail_interval", dur(&c.ThumbnailInterval)},
		{"shutdown_timeout", dur(&c.ShutdownTimeout)},
		{"recordings_max_age", dur(&c.RecordingsMaxAge)},
		{"recordings_max_mb", num(&c.RecordingsMaxMB)},
		{"recordings_user_quota_mb", num(&c.RecordingsUserQuotaMB)},
		{"recording_min_free_mb", num(&c.RecordingMinFreeMB)},
		{"stat_allow", func(v string) error { c.StatAllow = splitList(v); return nil }},
		{"nats", str(&c.NATS)},
		{"cluster", str(&c.Cluster)},
		{"node", str(&c.Node)},
		{"advertise_rtmp", str(&c.AdvertiseRTMP)},
		{"advertise_http", str(&c.AdvertiseHTTP)},
		{"tls_cert", str(&c.TLSCert)},
		{"tls_key", str(&c.TLSKey)},
		{"https_addr", str(&c.HTTPSAddr)},
		{"rtmps_addr", str(&c.RTMPSAddr)},
		{"http_header_timeout", dur(&c.HTTPHeaderTimeout)},
		{"http_body_timeout", dur(&c.HTTPBodyTimeout)},
		{"http_write_timeout", dur(&c.HTTPWriteTimeout)},
		{"http_idle_timeout", dur(&c.HTTPIdleTimeout)},
		{"http_max_conns_per_ip", num(&c.HTTPMaxConnsPerIP)},
		{"rtmp_max_conns_per_ip", num(&c.RTMPMaxConnsPerIP)},
		{"conn_limit_exempt", func(v string) error { c.ConnLimitExempt = splitList(v); return nil }},
		{"transcode_enabled", func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			c.Transcode.Enabled = b
			return nil
		}},
	}, c.s3Fields()...)
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
