package chat

import (
	"strings"
	"testing"
)

// FuzzParsePath feeds request paths to the chat endpoint's parser: a channel it returns
// is the path element before "/chat", under "/channels/".
func FuzzParsePath(f *testing.F) {
	f.Add("/api/v1/channels/alice/chat")
	f.Add("/api/v1/channels/alice/chat/history")
	f.Add("/channels//chat")
	f.Add("/chat")
	f.Fuzz(func(t *testing.T, p string) {
		channel, history, ok := parsePath(p)
		if !ok {
			return
		}
		suffix := "/" + channel + "/chat"
		if history {
			suffix += "/history"
		}
		if strings.Contains(channel, "/") || !strings.HasSuffix(p, "/channels"+suffix) {
			t.Fatalf("%q parsed as channel %q history %v", p, channel, history)
		}
	})
}
