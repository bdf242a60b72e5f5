package rtmp

import "errors"

// Why connections end or are refused. None carries a stream key.
var (
	errWrongKey         = errors.New("invalid stream key")
	errKeyRateLimited   = errors.New("too many invalid stream keys from this address")
	errPublisherActive  = errors.New("channel already has a publisher")
	errPublishDenied    = errors.New("publish denied")
	errStreamNotFound   = errors.New("stream not found")
	errUnpublished      = errors.New("client unpublished")
	errEndedByServer    = errors.New("stream ended by server")
	errPlayerClosed     = errors.New("player closed the stream")
	errSlowPlayer       = errors.New("player too slow: queue kept overflowing")
	errPlayerSilent     = errors.New("player silent: no answer to ping")
	errMissingSeqHeader = errors.New("media before its sequence header")
	errHandedOff        = errors.New("connection handed over to the player goroutines")
)
