package cmaf

import (
	"bytes"
	"fmt"

	"github.com/onair/onair/internal/unit"
)

// fixHvcC corrects the hvcC boxes of an init segment written by mediacommon v2.9.4, which
// copies the general constraint indicator from the SPS bytes without removing emulation
// prevention and leaves out general_profile_space and general_tier_flag. Players derive
// the codec string from hvcC (hls.js does), so it must match Codec. The boxes are found in
// track order; bytes 1 to 12 of each record are rewritten from the track's SPS.
func fixHvcC(init []byte, tracks []*unit.Track) error {
	pos := 0
	for _, t := range tracks {
		if t.Codec != unit.CodecH265 {
			continue
		}
		i := bytes.Index(init[pos:], []byte("hvcC"))
		if i < 0 {
			return fmt.Errorf("hvcC box not found")
		}
		rec := init[pos+i+4:]
		ptl, ok := h265PTL(t.SPS)
		if !ok || len(rec) < 13 {
			return fmt.Errorf("invalid h265 sps")
		}
		copy(rec[1:13], ptl)
		pos += i + 4
	}
	return nil
}
