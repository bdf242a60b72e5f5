package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/onair"
)

// Defaults of the Recorder fields.
const (
	DefaultQueueSize        = 16
	DefaultProgressInterval = 10 * time.Second
	DefaultEndTimeout       = 3 * time.Second
	freeCheckInterval       = 5 * time.Second
	dbTimeout               = 10 * time.Second
)

// Reasons shown to the owner of a recording that stopped before its broadcast ended.
const (
	ReasonDiskFull     = "disk full"
	ReasonSizeLimit    = "recording size limit reached"
	ReasonStorageError = "storage error"
)

// StreamSource gives the CMAF output of a live stream (*cmafstream.Manager).
type StreamSource interface {
	// Stream returns the named live stream's CMAF output, starting it when needed.
	Stream(name string) (*cmafstream.Stream, error)
}

// ChannelSource tells whether a channel records and what its title is
// (*store.ChannelService).
type ChannelSource interface {
	// ChannelInfo returns the channel with its recording switch and title.
	ChannelInfo(ctx context.Context, name string) (*onair.ChannelInfo, error)
}

// FreeSpacer is implemented by storages that can tell their free space cheaply
// (LocalStorage, LimitStorage). Recorder.MinFreeBytes needs it.
type FreeSpacer interface {
	// Free returns the bytes that can still be stored.
	Free(ctx context.Context) (int64, error)
}

// Recorder writes the live streams of channels that record to Storage, one recording
// per broadcast (see the package doc). Set the fields, call Start, tell it about new
// streams with StreamStarted, and Close it after the hub.
type Recorder struct {
	// CMAF gives the segments of live streams. Required.
	CMAF StreamSource

	// Channels tells whether a channel records and its title. Required.
	Channels ChannelSource

	// Recordings stores the recordings' rows. Required.
	Recordings onair.RecordingService

	// Storage keeps the recordings' media. Required.
	Storage Storage

	// Node is this node's name in a cluster (config node), stored with each recording:
	// Start repairs only this node's recordings. Default: "", a single node.
	Node string

	// Logger receives lifecycle logs. Default: slog.Default().
	Logger *slog.Logger

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// MaxRecordingBytes stops a recording (status failed, ReasonSizeLimit) before it
	// grows past this size. Default: 0, no limit.
	MaxRecordingBytes int64

	// MinFreeBytes stops recordings (ReasonDiskFull) when the storage has less free
	// space, checked every few seconds when Storage implements FreeSpacer. A full disk
	// (ENOSPC) stops them in any case. Default: 0, no check.
	MinFreeBytes int64

	// QueueSize is how many finished segments wait for the disk per recording; past it
	// segments are dropped (a discontinuity in the recording) and the live stream is not
	// slowed down. Default: 16 (about 32 s of media).
	QueueSize int

	// ProgressInterval is how often the duration and size of a running recording are
	// stored. Default: 10 s.
	ProgressInterval time.Duration

	// EndTimeout bounds the wait for the last segment of a stream that ended, and at
	// Close. Default: 3 s.
	EndTimeout time.Duration

	// FFmpeg is the ffmpeg binary that extracts the poster (PosterName) of each finished
	// recording with video. Without it in PATH, recordings get no poster. Default:
	// "ffmpeg".
	FFmpeg string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	byChannel map[string]*recording
	byID      map[int64]*recording

	freeMu  sync.Mutex
	freeAt  time.Time
	freeVal int64

	ffmpegPath string
	posters    chan posterJob // nil without ffmpeg
	posterDone chan struct{}
}

// Start applies the defaults, validates the fields and repairs the recordings a crash
// of this node left behind (see Repair).
func (r *Recorder) Start() error {
	switch {
	case r.CMAF == nil:
		return errors.New("recorder: cmaf streams are required")
	case r.Channels == nil:
		return errors.New("recorder: channel source is required")
	case r.Recordings == nil:
		return errors.New("recorder: recording service is required")
	case r.Storage == nil:
		return errors.New("recorder: storage is required")
	case r.MaxRecordingBytes < 0 || r.MinFreeBytes < 0 || r.QueueSize < 0 || r.ProgressInterval < 0 || r.EndTimeout < 0:
		return errors.New("recorder: sizes and durations must not be negative")
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.QueueSize == 0 {
		r.QueueSize = DefaultQueueSize
	}
	if r.ProgressInterval == 0 {
		r.ProgressInterval = DefaultProgressInterval
	}
	if r.EndTimeout == 0 {
		r.EndTimeout = DefaultEndTimeout
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.byChannel = make(map[string]*recording)
	r.byID = make(map[int64]*recording)

	ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
	defer cancel()
	// A repaired recording never reached its end, where the poster is asked for.
	type repairedRec struct {
		id     int64
		w      *writer
		logger *slog.Logger
	}
	var repaired []repairedRec
	if _, err := repair(ctx, r.Recordings, r.Storage, r.Node, "", false, r.Logger, func(id int64, w *writer, l *slog.Logger) {
		repaired = append(repaired, repairedRec{id, w, l})
	}); err != nil {
		r.cancel()
		return fmt.Errorf("recorder: %w", err)
	}
	r.startPosters()
	for _, rr := range repaired {
		if _, err := r.Storage.Stat(ctx, rr.id, PosterName); errors.Is(err, ErrNotFound) {
			r.queuePosterOf(rr.id, rr.w, rr.logger)
		}
	}
	return nil
}

// Close stops taking new streams, lets each running recording write the last segment
// of a stream that ended (up to EndTimeout), finishes every recording and waits.
func (r *Recorder) Close() {
	r.mu.Lock()
	if r.closed || r.cancel == nil {
		r.closed = true
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	r.closePosters()
}

// StreamStarted tells the recorder that a channel's live stream started (hub OnStart).
// It never blocks: the channel's recording switch is read, and the recording made, by a
// goroutine of the recorder. A reconnect inside the hub's grace window is not a new
// stream: the running recording continues, with a discontinuity.
func (r *Recorder) StreamStarted(channel string) {
	if r == nil {
		return // recording not configured
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.ctx == nil {
		return
	}
	r.wg.Add(1)
	go r.record(channel)
}

// RepairDead finishes, in the background, the recordings of channel that node, another
// node of the cluster now dead, left active (see Repair; channel "" is all of them). Call
// it only when the nodes share the recordings' storage (S3), and once per dead node and
// channel in the cluster: the cluster directory's sweep of the dead node's claims gives
// that. A node that was only cut off and comes back keeps writing its recording, which
// then ends finished with everything it wrote. Calls for this node itself are ignored:
// its own recordings are repaired by Start.
func (r *Recorder) RepairDead(node, channel string) {
	if r == nil || node == r.Node {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.ctx == nil {
		return
	}
	r.wg.Go(func() {
		ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
		defer cancel()
		logger := r.Logger.With("dead_node", node)
		n, err := repair(ctx, r.Recordings, r.Storage, node, channel, true, logger, func(id int64, w *writer, l *slog.Logger) {
			if _, err := r.Storage.Stat(ctx, id, PosterName); errors.Is(err, ErrNotFound) {
				r.queuePosterOf(id, w, l)
			}
		})
		if err != nil {
			logger.Warn("recordings of a dead node not repaired", "channel", channel, "err", err)
			return
		}
		if n > 0 {
			logger.Info("recordings of a dead node repaired", "channel", channel, "recordings", n)
		}
	})
}

// Active returns the id of the channel's running recording.
func (r *Recorder) Active(channel string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rg := r.byChannel[channel]; rg != nil {
		return rg.id, true
	}
	return 0, false
}

// Playlist returns the current EVENT playlist of a running recording, from memory: the
// stored one is rewritten less often once it is large (see the package doc). It is nil
// and false when the recording is not running or has no segment yet.
func (r *Recorder) Playlist(id int64) ([]byte, bool) {
	r.mu.Lock()
	rg := r.byID[id]
	r.mu.Unlock()
	if rg == nil {
		return nil, false
	}
	b := rg.w.livePlaylist()
	return b, b != nil
}

// Writing reports whether the recording is being written by this recorder.
func (r *Recorder) Writing(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id] != nil
}

func (r *Recorder) register(rg *recording) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.byChannel[rg.channel] = rg
	r.byID[rg.id] = rg
	return true
}

func (r *Recorder) unregister(rg *recording) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byChannel[rg.channel] == rg {
		delete(r.byChannel, rg.channel)
	}
	delete(r.byID, rg.id)
}

// record runs the recording of one broadcast of channel, if the channel records.
func (r *Recorder) record(channel string) {
	defer r.wg.Done()
	logger := r.Logger.With("channel", channel)

	ctx, cancel := context.WithTimeout(r.ctx, dbTimeout)
	info, err := r.Channels.ChannelInfo(ctx, channel)
	cancel()
	switch {
	case onair.ErrorCode(err) == onair.ENOTFOUND:
		logger.Debug("stream of unknown channel not recorded")
		return
	case err != nil:
		logger.Warn("channel lookup failed, stream not recorded", "err", err)
		return
	case !info.Recording:
		logger.Debug("recording off")
		return
	}
	stream, err := r.CMAF.Stream(channel)
	if err != nil {
		logger.Warn("stream not recordable", "err", err)
		return
	}
	sub := stream.Subscribe(r.QueueSize)
	defer sub.Close()

	rec := &onair.Recording{Channel: channel, Title: info.Title, StartedAt: r.Now(), Node: r.Node}
	ctx, cancel = context.WithTimeout(r.ctx, dbTimeout)
	err = r.Recordings.CreateRecording(ctx, rec)
	cancel()
	if err != nil {
		logger.Warn("recording not created", "err", err)
		return
	}
	rg := &recording{
		r:       r,
		id:      rec.ID,
		channel: channel,
		stream:  stream,
		sub:     sub,
		w:       newWriter(r.Storage, rec.ID),
		logger:  logger.With("recording_id", rec.ID),
		lastSeq: -1,
	}
	if !r.register(rg) {
		rg.end(nil)
		return
	}
	defer r.unregister(rg)
	rg.logger.Info("recording started")
	rg.end(rg.run())
}

// freeSpace returns the storage's free space, checked at most every few seconds, or -1
// when unknown.
func (r *Recorder) freeSpace(ctx context.Context) int64 {
	fs, ok := r.Storage.(FreeSpacer)
	if !ok {
		return -1
	}
	r.freeMu.Lock()
	defer r.freeMu.Unlock()
	if now := r.Now(); r.freeAt.IsZero() || now.Sub(r.freeAt) >= freeCheckInterval {
		free, err := fs.Free(ctx)
		if err != nil {
			free = -1
		}
		r.freeAt, r.freeVal = now, free
	}
	return r.freeVal
}

// invalidateFree makes the next freeSpace call check again (after a Put or a delete).
func (r *Recorder) invalidateFree() {
	r.freeMu.Lock()
	r.freeAt = time.Time{}
	r.freeMu.Unlock()
}
