package hls

// The PES packetizer of the MPEG-TS segmenter. mediacommon's mpegts.Writer (on astits)
// builds every PES twice before it reaches the segment: H.264/H.265 access units are
// copied into a new Annex B buffer (one allocation and one copy per frame), then astits
// packs each 188-byte packet through a bit writer into a temporary buffer. With 20
// publishers and every muxer on, that was ~15 % of the server's CPU (docs/performance.md).
// Here each packet is appended to the segment in one pass, straight from the hub's NAL
// units, with nothing allocated per frame. mediacommon still writes the PAT and PMT (once
// per segment) and marshals the audio payloads (ADTS, Opus access units), which are
// small and batched.

const (
	tsPacketSize   = 188
	tsPayloadSize  = tsPacketSize - 4
	tsSyncByte     = 0x47
	tsStreamVideo  = 0xe0
	tsStreamAudio  = 0xc0
	tsPCRLeadTicks = 90000 / 10 // the PCR runs 100 ms ahead of the DTS, as mediacommon's writer does
	tsPCREvery     = 3          // PES packets of the lead track between PCRs (at least)
	tsMax33        = 1<<33 - 1
)

var (
	annexBStartCode = []byte{0, 0, 0, 1}
	h264AUD         = []byte{0, 0, 0, 1, 9, 0xf0}          // access unit delimiter, any slice type
	h265AUD         = []byte{0, 0, 0, 1, 35 << 1, 1, 0x50} // AUD_NUT, any picture type
)

// tsBuffer is a segment being built: whole 188-byte packets appended in place. Its Write
// takes the tables from mediacommon's writer.
type tsBuffer struct{ b []byte }

func (t *tsBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	return len(p), nil
}

// pes describes one PES packet to write.
type pes struct {
	pid          uint16
	cc           *uint8 // the PID's continuity counter
	streamID     byte
	pts, dts     int64 // 90 kHz; dts == pts writes the PTS alone
	randomAccess bool
	hasPCR       bool
	pcr          int64 // 90 kHz PCR base, in the first packet's adaptation field
	parts        [][]byte
	size         int // bytes of parts
}

// appendPES appends p to b as TS packets (ISO/IEC 13818-1 2.4.3 and 2.4.3.6): the first
// carries the adaptation field (random access indicator, PCR) and the PES header, the
// last is filled up with adaptation-field stuffing, since a PES of unbounded length
// (video) cannot be padded with 0xff after its payload.
func appendPES(b []byte, p *pes) []byte {
	var hdr [19]byte
	hdr[2] = 1
	hdr[3] = p.streamID
	hdr[6] = 0x80 // '10' marker, no scrambling, no flags
	hlen := 5
	if p.dts != p.pts {
		hdr[7] = 0xc0
		hlen = 10
		putPESTime(hdr[9:], 3, p.pts)
		putPESTime(hdr[14:], 1, p.dts)
	} else {
		hdr[7] = 0x80
		putPESTime(hdr[9:], 2, p.pts)
	}
	hdr[8] = byte(hlen)
	if p.streamID != tsStreamVideo {
		// Video may leave the length at 0 (unbounded); audio states it when it fits.
		if n := 3 + hlen + p.size; n <= 0xffff {
			hdr[4], hdr[5] = byte(n>>8), byte(n)
		}
	}
	header := hdr[:9+hlen]

	remaining := p.size
	part, off := 0, 0
	for first := true; first || remaining > 0; first = false {
		room := tsPayloadSize
		afBody := 0 // adaptation field bytes after its length byte
		hasAF := false
		if first {
			room -= len(header)
			if p.randomAccess || p.hasPCR {
				hasAF = true
				afBody = 1
				if p.hasPCR {
					afBody += 6
				}
				room -= 1 + afBody
			}
		}
		take := min(remaining, room)
		stuff := room - take
		if stuff > 0 && !hasAF {
			// The length byte alone stuffs one byte; more needs the flags byte too.
			hasAF = true
			stuff--
			if stuff > 0 {
				afBody = 1
				stuff--
			}
		}

		b = append(b, tsSyncByte, byte(p.pid>>8)&0x1f, byte(p.pid))
		if first {
			b[len(b)-2] |= 0x40 // payload_unit_start_indicator
		}
		ctl := byte(0x10) | *p.cc // payload present
		*p.cc = (*p.cc + 1) & 0x0f
		if hasAF {
			ctl |= 0x20
			b = append(b, ctl, byte(afBody+stuff))
			if afBody > 0 {
				var flags byte
				if first && p.randomAccess {
					flags |= 0x40
				}
				if first && p.hasPCR {
					flags |= 0x10
				}
				b = append(b, flags)
				if first && p.hasPCR {
					base := p.pcr & tsMax33
					// 33-bit base, 6 reserved bits, 9-bit extension (0)
					b = append(b, byte(base>>25), byte(base>>17), byte(base>>9), byte(base>>1), byte(base<<7)|0x7e, 0)
				}
			}
			for range stuff {
				b = append(b, 0xff)
			}
		} else {
			b = append(b, ctl)
		}
		if first {
			b = append(b, header...)
		}
		remaining -= take
		for take > 0 {
			src := p.parts[part][off:]
			n := min(len(src), take)
			b = append(b, src[:n]...)
			take -= n
			off += n
			if off == len(p.parts[part]) {
				part, off = part+1, 0
			}
		}
	}
	return b
}

// putPESTime writes a 33-bit timestamp with its 4-bit prefix and marker bits (5 bytes).
func putPESTime(b []byte, prefix byte, t int64) {
	t &= tsMax33
	b[0] = prefix<<4 | byte(t>>29)&0x0e | 1
	b[1] = byte(t >> 22)
	b[2] = byte(t>>14)&0xfe | 1
	b[3] = byte(t >> 7)
	b[4] = byte(t<<1) | 1
}
