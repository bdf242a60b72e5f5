# onair build. `make run` builds and starts the server; `make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/onair/onair/internal/app.Version=$(VERSION)
PLAYER  := internal/web/static/vendor/hls.min.js
DASHJS  := internal/web/static/vendor/dash.all.min.js
UPLOT   := internal/web/static/vendor/uplot.iife.min.js internal/web/static/vendor/uplot.min.css
FUZZTIME ?= 30s

.PHONY: build run test test-short assets fuzz bench clean

build: $(PLAYER) $(DASHJS) $(UPLOT)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/onair ./cmd/onair

run: build
	./bin/onair serve

# The whole suite: unit, integration (real ffmpeg) and browser tests (real Chromium).
test: $(PLAYER) $(DASHJS) $(UPLOT)
	$(GO) vet ./...
	$(GO) test -race -p 1 -timeout 25m ./...

test-short:
	$(GO) test -short ./...

assets: $(PLAYER) $(DASHJS) $(UPLOT)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(PLAYER): node_modules/.package-lock.json
	cp node_modules/hls.js/dist/hls.min.js $@

$(DASHJS): node_modules/.package-lock.json
	cp node_modules/dashjs/dist/modern/umd/dash.all.min.js $@

# uPlot, for the dashboard and admin graphs (file names in lower case, like the others).
internal/web/static/vendor/uplot.%: node_modules/.package-lock.json
	cp node_modules/uplot/dist/uPlot.$* $@

# Runs every fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m). The targets are found
# with grep, so packages without one cost no build. FUZZDIRS narrows the search
# (FUZZDIRS=internal/rtmp); FUZZFLAGS adds go test flags (FUZZFLAGS="-parallel 1").
FUZZDIRS  ?= internal cmd
FUZZFLAGS ?=
fuzz:
	@set -e; for dir in $$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' $(FUZZDIRS) | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -d' ' -f2); do \
	    echo "== ./$$dir $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./$$dir; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

clean:
	rm -rf bin node_modules $(PLAYER) $(DASHJS) $(UPLOT)

# The soak of issue 9 (docs/reliability.md): 20 publishers, 500 RTMP players, 200 HLS viewers
# for SOAK_DURATION (default 30m); RSS and goroutines from /metrics every 30 s.
.PHONY: soak
soak:
	scripts/soak.sh
