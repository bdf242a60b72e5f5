package rtmp

import (
	"bytes"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/unit"
)

// TestPlayTimestampsAcrossBoundaries chunks video units whose timestamps cross RTMP's
// extended timestamp boundary (0xFFFFFF ms) and the 32-bit wrap, each spanning several
// chunks, and reads them back with gortmplib's reader (as a player would): every
// timestamp comes back, wrapped at 2^32 ms.
func TestPlayTimestampsAcrossBoundaries(t *testing.T) {
	track := &unit.Track{Codec: unit.CodecH264, SPS: seedSPS, PPS: seedPPS}
	nalu := bytes.Repeat([]byte{0x41, 0x9a}, outChunkSize) // 2 chunks and a bit
	var stream []byte
	stream = append(stream, clientMessages(&message.SetChunkSize{Value: outChunkSize})...)
	var want []time.Duration
	for _, start := range []time.Duration{0xFFFFFF*time.Millisecond - 100*time.Millisecond, (1<<32)*time.Millisecond - 100*time.Millisecond} {
		for i := range 8 {
			dts := start + time.Duration(i)*33*time.Millisecond
			u := &unit.Unit{DTS: dts, PTS: dts, Payload: [][]byte{nalu}}
			stream = append(stream, encodeUnit(track, u)...)
			want = append(want, time.Duration(uint32(dts/time.Millisecond))*time.Millisecond)
		}
	}
	bc := bytecounter.NewReader(bytes.NewReader(stream))
	r := message.NewReader(bc, bc, func(uint32) error { return nil })
	var got []time.Duration
	for {
		msg, err := r.Read()
		if err != nil {
			break
		}
		if v, ok := msg.(*message.Video); ok {
			require.Len(t, v.AU, 4+len(nalu))
			got = append(got, v.DTS)
		}
	}
	require.Equal(t, want, got)
	// and through the chunk guard, as a server would read a publisher sending the same
	g := newChunkGuard(bytes.NewReader(stream), 1<<20)
	g.st, g.need = gsBasic, 1
	msgs, err := readRaw(g)
	require.NotErrorIs(t, err, errGuard)
	require.Len(t, msgs, 1+len(want))
}

// TestIngestTimestampsAcrossBoundaries sends video messages whose timestamps cross
// 0xFFFFFF ms and the 32-bit wrap with gortmplib's writer (as our Go publisher does: it
// writes zeros for the extended timestamp of type 3 chunks), over 128-byte chunks: the
// chunk guard lets them through, and gortmplib reads every timestamp back.
func TestIngestTimestampsAcrossBoundaries(t *testing.T) {
	var msgs []message.Message
	var want []time.Duration
	for _, start := range []time.Duration{0xFFFFFF*time.Millisecond - 100*time.Millisecond, (1<<32)*time.Millisecond - 100*time.Millisecond} {
		for i := range 8 {
			dts := start + time.Duration(i)*33*time.Millisecond
			msgs = append(msgs, &message.Video{
				ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 0x1000000,
				Codec: message.CodecH264, Type: message.VideoTypeAU, AU: bytes.Repeat([]byte{0, 0, 1, 40}, 100), DTS: dts,
			})
			want = append(want, time.Duration(uint32(dts/time.Millisecond))*time.Millisecond)
		}
	}
	g := newChunkGuard(bytes.NewReader(clientMessages(msgs...)), 1<<20)
	g.st, g.need = gsBasic, 1
	bc := bytecounter.NewReader(g)
	r := message.NewReader(bc, bc, func(uint32) error { return nil })
	var got []time.Duration
	for {
		msg, err := r.Read()
		if err != nil {
			require.NotErrorIs(t, err, errGuard)
			break
		}
		got = append(got, msg.(*message.Video).DTS)
	}
	require.Equal(t, want, got)
	var tl timeline
	for i, d := range got {
		got[i] = tl.unwrap(d)
	}
	for i := 9; i < len(got); i++ {
		require.Equal(t, 33*time.Millisecond, got[i]-got[i-1], "after the wrap")
	}
}
