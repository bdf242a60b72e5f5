// Package rtmp is the RTMP server: publishers (OBS, ffmpeg) push streams into the hub
// with their stream key, and players read live streams back.
//
// # What gortmplib does
//
// gortmplib's ServerConn runs the handshake, decodes chunks, messages and AMF0, and
// answers the connect/createStream commands (AcceptConn; releaseStream and FCPublish are
// read and ignored, which OBS and ffmpeg accept). pkg/message decodes the FLV and
// Enhanced RTMP media messages (legacy AVC/AAC/MP3, and HEVC/AV1/Opus sequence starts
// and coded frames).
//
// # What this package adds
//
//   - chunkGuard, between the socket and gortmplib, follows the chunk stream byte by
//     byte and enforces what the library does not: chunk sizes in [1, 16 MiB] (the library
//     accepts 0, which turns every byte into a chunk), a message length limit checked on
//     the chunk header before any body is read, and a bound on the bytes of unfinished
//     messages across chunk streams. It also sets the read deadline before every read
//     (no later than the end of HandshakeTimeout while the connection is being set up,
//     against clients trickling bytes), refuses empty audio/video messages and type 3
//     chunks missing the extended timestamp of their message, and looks at every command
//     first: commands before connect, a second connect and undecodable AMF0 close the
//     connection; the first unknown command is logged and dropped.
//   - Timestamps: RTMP's 32-bit millisecond timestamps (which wrap after 49.7 days) are
//     unwrapped per publisher into a continuous 64-bit timeline (timeline.go), so a
//     stream goes on across the wrap.
//   - Publish: the key (last path element, any application name) is authorized after
//     AcceptConn and before NetStream.Publish.Start; wrong keys, a per-IP failure limiter
//     and a second publisher are refused with RejectAction, a short drain and a close.
//     Tracks are found at the message level rather than with gortmplib's Reader (which
//     reads about 2 s first): onMetaData says which tracks to expect, the sequence headers
//     configure them, and the stream goes live as soon as all are known (or after
//     ProbeDuration of media). Media read meanwhile is buffered (bounded) and fed after.
//     H.264/H.265 key units get their parameter sets in band. A sequence header that
//     changes mid-stream restarts the hub session with the new tracks (through the hub's
//     grace window, so the stream continues): the hub tells readers with a
//     discontinuity, and RTMP players get the new sequence headers and metadata.
//   - Play: chunk once, share bytes. Each unit is chunked once per stream into RTMP bytes
//     with a type 0 header (absolute timestamp, extended timestamp repeated on type 3
//     chunks), the same chunk stream ids and message stream id for every player, and the
//     chunk size gortmplib announced in AcceptConn (65536); the bytes are cached on the
//     unit (unit.Unit.Encoded) and shared by every player. A player writes each batch of
//     its hub queue with one writev (net.Buffers). After the play command gortmplib's
//     ServerConn is dropped (it is not safe for concurrent use and its 4 KiB buffers
//     would stay with every idle player): a second, small goroutine reads the socket
//     through the chunk guard, pings silent players, and handles deleteStream. A stalled
//     player never slows anyone: the hub drops its queue to the next keyframe, and the
//     player is cut when a write blocks past WriteTimeout or when it keeps dropping for
//     SlowPlayerWindow.
//
// Logs never contain a stream key: keys are onair.StreamKey values, and gortmplib errors
// that may print the publish URL are reduced to their kind.
package rtmp
