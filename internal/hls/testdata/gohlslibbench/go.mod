module github.com/onair/onair/internal/hls/testdata/gohlslibbench

go 1.26.8

require (
	github.com/bluenviron/gohlslib/v2 v2.4.4
	github.com/bluenviron/mediacommon/v2 v2.9.4
	github.com/onair/onair v0.0.0
)

require (
	github.com/abema/go-mp4 v1.7.1 // indirect
	github.com/asticode/go-astikit v0.30.0 // indirect
	github.com/asticode/go-astits v1.16.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
)

replace github.com/onair/onair => ../../../..
