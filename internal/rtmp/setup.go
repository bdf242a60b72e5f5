package rtmp

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
)

var (
	errSecondConnect = errors.New("second connect command")
	errSetupTimeout  = errors.New("connection setup not finished in time")
)

// knownCommands are the commands clients send besides connect; others are dropped with
// one warning per connection (gortmplib ignores them too).
var knownCommands = map[string]bool{
	"createStream": true, "releaseStream": true, "FCPublish": true, "FCUnpublish": true,
	"publish": true, "play": true, "play2": true, "deleteStream": true, "closeStream": true,
	"getStreamLength": true, "_checkbw": true, "_result": true, "_error": true, "onBWDone": true,
	"onStatus": true, "receiveAudio": true, "receiveVideo": true, "FCSubscribe": true,
	"FCUnsubscribe": true, "pause": true, "seek": true,
}

// setupReadDeadline returns the read deadline of the next read: ReadTimeout from now, but
// no later than the end of the setup phase (handshake and commands up to publish or
// play), so that a client trickling bytes cannot hold a connection open forever.
func (s *Server) setupReadDeadline(c *conn) time.Time {
	d := time.Now().Add(s.ReadTimeout)
	if !c.setupUntil.IsZero() && c.setupUntil.Before(d) {
		d = c.setupUntil
	}
	return d
}

// setupError explains a read deadline hit by the end of the setup phase.
func (s *Server) setupError(c *conn, err error) error {
	if isTimeout(err) && !c.setupUntil.IsZero() && !time.Now().Before(c.setupUntil) {
		return fmt.Errorf("%w (handshake timeout %v): %w", errSetupTimeout, s.HandshakeTimeout, err)
	}
	return err
}

// checkCommand looks at every command of a publisher or a connection being set up, before
// gortmplib reads it: it refuses commands before connect, a second connect and undecodable
// commands, and logs the first unknown command.
func (s *Server) checkCommand(c *conn, body []byte) error {
	if body == nil {
		// Too long for the guard to look at: a large connect (gortmplib refuses anything
		// else first), or a command we let gortmplib judge.
		if c.connects == 0 {
			c.connects = 1
		}
		return nil
	}
	d, err := amf0.Unmarshal(body)
	if err != nil {
		return fmt.Errorf("invalid command: %w", err)
	}
	if len(d) == 0 {
		return errors.New("invalid command: empty")
	}
	name, ok := d[0].(string)
	if !ok {
		return errors.New("invalid command: no name")
	}
	switch {
	case name == "connect":
		c.connects++
		if c.connects > 1 {
			return errSecondConnect
		}
		return nil
	case c.connects == 0 && knownCommands[name]:
		return fmt.Errorf("%s command before connect", name)
	case c.connects == 0:
		return errors.New("unknown command before connect")
	case knownCommands[name]:
		return nil
	}
	if !c.warnedUnknown {
		c.warnedUnknown = true
		s.Logger.Warn("unknown command dropped", "conn_id", c.id, "remote_addr", c.remote,
			"command", printable(name, 32))
	}
	return nil
}

// printable returns s cut to max bytes with non-printable bytes replaced, for logs.
func printable(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7E {
			return '?'
		}
		return r
	}, s)
}
