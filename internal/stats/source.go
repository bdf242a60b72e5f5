package stats

import "time"

// Source reports the live state of the media side. The stats package imports no media
// package: internal/stats/source adapts the hub and the RTMP server to this interface,
// and app wires it.
type Source interface {
	// Snapshot returns the current state. It is called by every scrape, /stat and JSON
	// request, and by the sampler: it must be cheap and safe for concurrent use.
	Snapshot() Snapshot
}

// Snapshot is the media side at one instant.
type Snapshot struct {
	// Streams are the live streams (publishing, or in their reconnect grace window),
	// sorted by name.
	Streams []Stream

	// Conns are the open RTMP connections, by ID.
	Conns []Conn

	// Accepted counts the RTMP connections accepted since start.
	Accepted uint64

	// BytesIn and BytesOut count the bytes read from and written to every RTMP
	// connection since start.
	BytesIn  uint64
	BytesOut uint64

	// Dropped counts the units dropped by full reader queues since start, by reader kind
	// ("rtmp", "hls", "cmaf", ...). It never decreases.
	Dropped map[string]uint64
}

// Stream is one live stream.
type Stream struct {
	// Name is the channel's username (never a stream key).
	Name       string
	StartedAt  time.Time
	Publishing bool
	// Relay is set when the stream is pulled from its origin node (a cluster edge serving
	// it to its own viewers): its publisher is the pull, and the channel's broadcaster is
	// on the origin.
	Relay bool

	// BytesIn counts the media bytes the publisher(s) sent. BytesOut counts the bytes sent
	// to RTMP players (the Collector adds what HLS and DASH served).
	BytesIn  uint64
	BytesOut uint64

	// VideoBitrate and AudioBitrate are the publisher's bit rates in bits/s, FPS its frame
	// rate and KeyframeInterval the distance between its last two keyframes, measured
	// over the last seconds.
	VideoBitrate     float64
	AudioBitrate     float64
	FPS              float64
	KeyframeInterval time.Duration

	// Video and Audio describe the tracks (nil when the stream has none).
	Video *VideoMeta
	Audio *AudioMeta

	// Readers counts the attached hub readers by kind: "rtmp" are RTMP players.
	Readers map[string]int

	// Dropped counts the units the attached readers' queues dropped, by reader kind.
	Dropped map[string]uint64
}

// VideoMeta describes a video track, as nginx-rtmp's /stat meta/video does.
type VideoMeta struct {
	Codec   string `json:"codec"` // "H264", "HEVC", "AV1"
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Profile string `json:"profile,omitempty"` // "High", "Main", ... ("" when unknown)
	Compat  int    `json:"compat"`            // H.264 constraint flags (the profile compatibility byte)
	Level   string `json:"level,omitempty"`   // "3.1" ("" when unknown)
}

// AudioMeta describes an audio track, as nginx-rtmp's /stat meta/audio does.
type AudioMeta struct {
	Codec      string `json:"codec"`             // "AAC", "MP3", "Opus"
	Profile    string `json:"profile,omitempty"` // AAC: "LC", "HE", "HEv2", "Main"
	Channels   int    `json:"channels"`
	SampleRate int    `json:"sample_rate"`
}

// Conn is one RTMP connection.
type Conn struct {
	ID       uint64
	Addr     string // "ip:port"
	Start    time.Time
	FlashVer string
	// State is "handshake", "publishing" or "playing"; Channel is set for the last two.
	State   string
	Channel string
	// Active is set once media flows.
	Active   bool
	BytesIn  uint64
	BytesOut uint64
	// Dropped counts a player's units dropped by its queue.
	Dropped uint64
	// Timestamp is the last media timestamp received or sent; AVSync the last audio
	// timestamp minus the last video one.
	Timestamp time.Duration
	AVSync    time.Duration
}

// RTMP connection states (Conn.State).
const (
	StateHandshake  = "handshake"
	StatePublishing = "publishing"
	StatePlaying    = "playing"
)
