// Package cmafstream runs one CMAF segmenter per live stream and shares its output with
// every consumer: the Low-Latency HLS playlist (internal/hls), the live DASH manifest
// (internal/dash) and, later, the recorder.
//
// # Placement
//
// The segmenter itself (internal/cmaf) is a leaf library that does no I/O. This package is
// the one place that attaches it to the hub: it imports hub, cmaf and unit, and the edge
// packages hls and dash import it. Edge packages still never import one another; they
// share the segment bytes through this package instead, so a stream watched over LL-HLS
// and DASH at once is segmented once.
//
// # Model
//
// A Manager starts a Stream lazily, on the first call to Manager.Stream for a live hub
// stream. The Stream is a hub Reader (kind "cmaf") that drives a cmaf.Segmenter from a
// goroutine it owns. After each batch of hub events it publishes an immutable State: the
// init segments, a bounded window of finished segments, the parts of the segment being
// written, and a Changed channel that is closed when a newer State replaces it. Consumers
// read State snapshots without locks, wait for a change (or for a given part) without
// polling through Stream.Wait, and may subscribe to finished segments in order
// (Stream.Subscribe, bounded: a subscriber that does not keep up loses segments, which
// are counted, and never slows the stream down).
//
// Bytes are produced once and never copied per request: a Part's Data is the
// moof+mdat written by cmaf, a Segment is the run of its parts, and the per-track views
// that DASH needs (dash.js refuses fragments that mux audio and video) are cut from them
// lazily, once per part, and shared by every DASH viewer.
//
// # Timing
//
// Segments and parts carry their position on the hub's unit timeline (Start, Duration)
// and a wall-clock time (Wall). Each publisher session maps the unit timeline to the wall
// clock once, when its first media is segmented: at that moment the newest unit read is
// taken to be "now", so the hub's cached GOP, which a new reader receives in a burst,
// lands in the past where it belongs. A session that would start before the end of the
// previous one is pushed later, so wall times never go back. Session (the publisher
// session number) lets DASH start a Period at each reconnect, where this mapping changes.
//
// # Lifecycle
//
// Each Manager.Stream call and each Wait marks consumer interest. A Stream with no
// interest for IdleTimeout and no subscriber stops and frees its segments. When the hub
// stream ends, the Stream emits its last part and segment, marks the State Ended and keeps
// serving it for EndedTimeout (or until it is idle). A publisher reconnect inside the
// hub's grace window continues the same Stream: the next segment is marked Discontinuity
// and starts a new Session, with a new Init when the tracks changed. Units the hub
// dropped for a slow reader are handled the same way (a Discontinuity inside the Session).
package cmafstream
