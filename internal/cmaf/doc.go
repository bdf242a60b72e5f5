// Package cmaf cuts a stream of hub units into CMAF / fragmented MP4: one init segment and
// a sequence of immutable media parts grouped into segments. Low-Latency HLS (EXT-X-PART),
// live DASH (SegmentTemplate $Number$) and recordings all serve the bytes produced here, so
// the package does no I/O: it hands out byte blobs with their timing through callbacks.
//
// # Model
//
// The init segment (ftyp+moov) describes every track: track i of Segmenter.Tracks is MP4
// track ID i+1, with a 90 kHz timescale for video and the sample rate for audio (48 kHz for
// Opus). It is emitted by Start, and again by Reset when the tracks change.
//
// A part is one movie fragment (moof+mdat) holding the samples of every track over the
// part's time range [Start, Start+Duration) on the units' DTS timeline; the tfdt of each
// track is the DTS of its first sample in the part. Part boundaries are chosen on the
// leading track (the first video track, or the first track when there is no video): a new
// part starts at the first leading unit at or after the part target, so with a known frame
// duration a part is the largest whole number of frames that fits PartTarget (7 frames at
// 30 fps, 6 at 25 fps for the 250 ms default), and never less than one frame. The samples
// of the other tracks are split at the same instant: a sample goes into the part whose
// range holds its DTS.
//
// A segment is a run of parts. It starts with an independent part whose first video
// sample is a key unit (for audio-only streams every part is independent), and it is cut
// at the first video key unit at or after SegmentTarget, so it lasts longer than the
// target when the GOP is longer. The bytes of a segment are the concatenation of its
// parts' bytes, which is what DASH and recordings serve.
//
// # Timing
//
// Each track holds its latest sample back until the next unit of that track arrives, so
// every sample duration is the exact difference of consecutive DTS values, and a part is
// finished once every track has delivered a unit at or after the part's end. A track that
// lags the newest unit of the stream by more than half a second is not waited for (its
// late samples go into the next part), so a track that stops does not stop the stream.
// Close and Reset give the held-back samples the codec's frame duration (audio) or the
// measured frame interval (video).
//
// # Bounds
//
// A part never buffers more than MaxPartSize bytes or 8192 samples: past that it is cut
// at once at the newest unit of the leading track, and the next part is not independent
// (unless that unit is a key unit). A segment without a key unit for MaxSegmentDuration
// is cut anyway and flagged as not independent; the next key unit then starts a new
// segment. When the leading track stops while others go on, parts are cut on their clock.
// Before the first key unit, only the last half second of the other tracks is kept.
//
// # Bytes
//
// The init segment is written by mediacommon's fmp4.Init. Fragments are written by this
// package in exactly the layout of mediacommon's fmp4.Part (the tests compare the bytes),
// with one allocation per part, because the reflection-based box writer behind fmp4.Part
// costs about a thousand allocations per fragment.
package cmaf
