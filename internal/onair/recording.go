package onair

import (
	"context"
	"time"
)

// Recording statuses.
const (
	// RecordingActive is a recording being written: its playlist is an EVENT playlist
	// that grows with each segment.
	RecordingActive = "recording"
	// RecordingFinished is a complete replay.
	RecordingFinished = "finished"
	// RecordingFailed is a recording that stopped before its broadcast ended (Reason says
	// why, e.g. "disk full"). What was written before plays like a finished one.
	RecordingFailed = "failed"
)

// Recording is one broadcast written to storage: a replay once it has ended.
type Recording struct {
	ID int64
	// Channel is the channel's name (its owner's username); UserID is the owner.
	Channel string
	UserID  int64
	// Title is the channel's title when the broadcast started; the owner can rename it.
	Title     string
	StartedAt time.Time
	// EndedAt is nil while recording.
	EndedAt *time.Time
	// Duration, Bytes and Segments cover the segments written so far.
	Duration time.Duration
	Bytes    int64
	Segments int
	// Status is RecordingActive, RecordingFinished or RecordingFailed.
	Status string
	// Reason says why a recording failed ("disk full"); empty otherwise.
	Reason string
	// Views counts viewer sessions of the replay.
	Views int
	// VideoID is the video that comments on the replay attach to (see CommentService).
	VideoID int64
	// Node is the cluster node that writes (or wrote) the recording, from its config;
	// empty on a single node. Only that node repairs it after a crash, unless the
	// recordings are in shared storage and the node died (see ActiveRecordings).
	Node string
}

// RecordingProgress is what a recording holds so far.
type RecordingProgress struct {
	Duration time.Duration
	Bytes    int64
	Segments int
}

// Limits on recordings.
const (
	MaxRecordingTitleLen = MaxTitleLen
)

// RecordingService stores the recordings of broadcasts. Reads are public; renaming is
// for the channel's owner, deleting for the owner and site admins. The recorder and the
// retention cleaner use the methods without an actor.
type RecordingService interface {
	// CreateRecording adds a recording of rec.Channel with status RecordingActive, started at
	// rec.StartedAt, titled rec.Title (trimmed and cut to MaxRecordingTitleLen), written by
	// rec.Node, with its video for comments. It sets ID, UserID, Status and VideoID. An unknown channel is
	// ENOTFOUND.
	CreateRecording(ctx context.Context, rec *Recording) error

	// UpdateRecordingProgress stores the progress of an active recording.
	UpdateRecordingProgress(ctx context.Context, id int64, p RecordingProgress) error

	// FinishRecording marks the recording RecordingFinished at endedAt with its final
	// progress.
	FinishRecording(ctx context.Context, id int64, p RecordingProgress, endedAt time.Time) error

	// FailRecording marks the recording RecordingFailed at endedAt with its final progress
	// and a reason shown to its owner.
	FailRecording(ctx context.Context, id int64, p RecordingProgress, endedAt time.Time, reason string) error

	// FindRecording returns the recording, or ENOTFOUND.
	FindRecording(ctx context.Context, id int64) (*Recording, error)

	// RecordingsByChannel returns the channel's recordings newest first, from offset, at
	// most limit (default 50, at most 1000). An unknown channel is ENOTFOUND.
	RecordingsByChannel(ctx context.Context, channel string, offset, limit int) ([]*Recording, error)

	// RenameRecording changes the title; only the channel's owner may (EFORBIDDEN).
	RenameRecording(ctx context.Context, actor *User, id int64, title string) (*Recording, error)

	// DeleteRecording deletes the recording with its video and comments; the owner and
	// admins may. A recording still being written is ECONFLICT. The caller deletes the
	// media from storage.
	DeleteRecording(ctx context.Context, actor *User, id int64) error

	// PurgeRecording deletes the recording, its video and comments without an actor
	// (retention, repair). Unknown ids are not an error.
	PurgeRecording(ctx context.Context, id int64) error

	// AddRecordingView counts one view.
	AddRecordingView(ctx context.Context, id int64) error

	// ActiveRecordings returns the recordings of node with status RecordingActive, oldest
	// first ("" is a single node's). When a node starts, its own are what a crash left
	// behind; those of other nodes sharing the database may be running.
	ActiveRecordings(ctx context.Context, node string) ([]*Recording, error)

	// AllRecordings returns every recording, oldest first (by StartedAt, then ID), for the
	// retention cleaner: it sums sizes per user and per site from them.
	AllRecordings(ctx context.Context) ([]*Recording, error)
}
