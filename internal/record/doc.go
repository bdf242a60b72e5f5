// Package record writes live broadcasts to storage as replays, repairs them after a
// crash, applies the retention limits, and remuxes a replay into one MP4 download.
//
// # Recording
//
// The Recorder subscribes to the finished CMAF segments of each live stream whose
// channel records (cmafstream.Stream.Subscribe: bounded, a slow disk loses segments and
// never slows the stream down) and writes, per recording id, through a Storage:
//
//	init-{k}.mp4   init segments (a new one when a reconnecting publisher changes tracks)
//	seg-{n}.m4s    the CMAF segments, numbered from 0
//	index.m3u8     the HLS playlist: EVENT while recording, VOD + EXT-X-ENDLIST at the end
//	index.mpd      the static DASH manifest, written at the end
//	meta.json      the tracks of each init segment (codecs, sizes), for the manifest
//
// A recording follows the hub stream, not the publisher: a reconnect inside the hub's
// grace window continues it, and its next segment follows an EXT-X-DISCONTINUITY (and a
// new EXT-X-MAP when the tracks changed). It ends when the hub stream ends, with the
// stream's last segment. A full disk (ErrFull, from ENOSPC or a LimitStorage), a
// recording past Recorder.MaxRecordingBytes or free space under Recorder.MinFreeBytes
// stops the recording cleanly: what was written stays playable, the row says failed
// with a reason the owner sees, and the live stream goes on.
//
// # Crash safety
//
// Every object is written to a temporary file, synced and renamed into place, so a
// segment exists whole or not at all. The playlist is rewritten after each segment
// while it is small (and less often once it is large: see writer.go; the running
// recording's current playlist is served from memory). At start, Repair finishes every
// recording of this node (Recorder.Node, in a cluster) that a crash left "recording"; a
// surviving node finishes a dead node's with Recorder.RepairDead when the storage is
// shared. Repair takes the segments of the stored playlist plus the complete segments
// stored after it (their timing read from their fragments), and writes the final
// playlist, manifest and row.
//
// # Retention
//
// The Cleaner deletes finished recordings oldest first past a maximum age, a total size
// per site and a quota per user, at start and periodically, and the stored media that
// no row owns.
//
// # Downloads
//
// BuildMP4 reads the fragment headers of a replay and lays out one progressive MP4
// (mediacommon's pmp4 writes the header); MP4.NewReader reads any byte range of it from
// the stored segments, without re-encoding and without writing the file anywhere.
package record
