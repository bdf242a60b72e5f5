package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/bluenviron/gortmplib/pkg/message"
)

// IdlePublish publishes the clip's sequence headers and first key frame to pubURL, then
// only one audio frame per second (keep-alive), until ctx ends: a live stream that sends
// (almost) nothing new, to measure the memory of idle players.
func IdlePublish(ctx context.Context, pubURL string, clip *Clip) error {
	c, err := dialRTMP(ctx, pubURL, true, DefaultConnectTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	var audio *message.Audio
	sentKey := false
	for i := range clip.msgs {
		m := &clip.msgs[i]
		switch {
		case m.header && m.video != nil:
			err = c.Write(m.video)
		case m.header:
			err = c.Write(m.audio)
		case m.video != nil && !sentKey && m.video.IsKeyFrame:
			sentKey = true
			err = c.Write(m.video)
		case m.audio != nil && audio == nil:
			audio = m.audio
		}
		if err != nil {
			return err
		}
	}
	if audio == nil || !sentKey {
		return fmt.Errorf("clip has no key frame or no AAC audio")
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		a := *audio
		a.DTS = time.Duration(n) * time.Second
		if err := c.Write(&a); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// IdlePlay connects a player to playURL and reads (answering pings) until ctx ends. ready
// is called once the play command was accepted.
func IdlePlay(ctx context.Context, playURL string, ready func(error)) {
	c, err := dialRTMP(ctx, playURL, false, DefaultConnectTimeout)
	ready(err)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		if _, err := c.Read(); err != nil {
			return
		}
	}
}
