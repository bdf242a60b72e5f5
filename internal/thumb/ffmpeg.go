package thumb

import (
	"bytes"
	"context"

	"github.com/onair/onair/internal/ffmpeg"
	"github.com/onair/onair/internal/unit"
)

// maxThumbBytes bounds what ffmpeg may write back.
const maxThumbBytes = 2 << 20

// decode runs ffmpeg on one Annex-B access unit and returns the decoded picture as a JPEG,
// width pixels wide (ffmpeg.Frame: its own process group, killed when ctx ends).
func decode(ctx context.Context, path string, codec unit.Codec, au []byte, width int) ([]byte, error) {
	format := "h264"
	if codec == unit.CodecH265 {
		format = "hevc"
	}
	return ffmpeg.Frame(ctx, path, format, bytes.NewReader(au), width, maxThumbBytes)
}
