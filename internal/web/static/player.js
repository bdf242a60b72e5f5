// player.js plays the channel's live HLS stream: with hls.js (static/vendor/hls.min.js) where
// Media Source Extensions exist, else natively where the browser plays HLS itself (iOS Safari).
// It exposes window.onairPlayer = {video, hls, mode, start(), stop()} for channel.js and tests.
(function () {
  'use strict';

  var root = document.getElementById('channel');
  var video = document.getElementById('video');
  if (!root || !video) {
    window.onairPlayer = null;
    return;
  }

  var src = root.dataset.src;
  var unmute = document.getElementById('unmute');
  var status = document.getElementById('player-status');
  var RESTART_MS = 3000;

  var active = false; // the stream should be playing
  var restartTimer = 0;
  var mediaErrors = 0;
  var lastMediaError = 0;

  var player = {
    video: video,
    hls: null, // the Hls instance while hls.js plays
    mode: '', // 'hls.js', 'native' or 'unsupported'
    start: start,
    stop: stop
  };
  window.onairPlayer = player;

  function setStatus(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  // The playlist answers 404 for a few seconds right after a channel goes live, so
  // playlist loads retry on 404 as well as on the errors hls.js retries by itself.
  function retryOn404(cfg, retryCount, isTimeout, response, retry) {
    return retry || (!!response && response.code === 404 && retryCount < cfg.maxNumRetry);
  }

  function loadPolicy() {
    return {
      default: {
        maxTimeToFirstByteMs: 10000,
        maxLoadTimeMs: 20000,
        timeoutRetry: { maxNumRetry: 4, retryDelayMs: 0, maxRetryDelayMs: 0 },
        errorRetry: {
          maxNumRetry: 8,
          retryDelayMs: 1000,
          maxRetryDelayMs: 4000,
          shouldRetry: retryOn404
        }
      }
    };
  }

  function hlsConfig() {
    return {
      startPosition: -1, // the live edge
      liveSyncDurationCount: 3,
      liveDurationInfinity: true,
      lowLatencyMode: true,
      backBufferLength: 30,
      manifestLoadPolicy: loadPolicy(),
      playlistLoadPolicy: loadPolicy()
    };
  }

  function start() {
    if (active) {
      return;
    }
    active = true;
    load();
  }

  function stop() {
    active = false;
    clearTimeout(restartTimer);
    teardown();
    setStatus('');
    syncUnmute();
  }

  function load() {
    clearTimeout(restartTimer);
    setStatus('Connecting…');
    if (window.Hls && window.Hls.isSupported()) {
      player.mode = 'hls.js';
      var hls = new window.Hls(hlsConfig());
      player.hls = hls;
      hls.on(window.Hls.Events.ERROR, onHlsError);
      hls.on(window.Hls.Events.MANIFEST_PARSED, play);
      hls.attachMedia(video);
      hls.loadSource(src);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      player.mode = 'native';
      video.src = src;
      play();
    } else {
      player.mode = 'unsupported';
      setStatus('This browser cannot play HLS. Open the HLS address below in VLC or ffplay.');
    }
  }

  function teardown() {
    if (player.hls) {
      player.hls.destroy();
      player.hls = null;
    }
    if (video.getAttribute('src')) {
      video.removeAttribute('src');
      video.load();
    }
  }

  // restart starts over after a pause while the stream should still play.
  function restart() {
    teardown();
    setStatus('Waiting for the stream…');
    clearTimeout(restartTimer);
    restartTimer = setTimeout(function () {
      if (active) {
        load();
      }
    }, RESTART_MS);
  }

  function play() {
    // Browsers allow autoplay only muted; the unmute button brings the sound.
    video.muted = true;
    var p = video.play();
    if (p && p.catch) {
      p.catch(function () {
        setStatus('Press play to start.');
      });
    }
    syncUnmute();
  }

  function onHlsError(event, data) {
    if (!data.fatal) {
      return;
    }
    if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) {
      var now = Date.now();
      if (now - lastMediaError > 10000) {
        mediaErrors = 0;
      }
      lastMediaError = now;
      mediaErrors++;
      if (mediaErrors === 1) {
        player.hls.recoverMediaError();
        return;
      }
      if (mediaErrors === 2) {
        player.hls.swapAudioCodec();
        player.hls.recoverMediaError();
        return;
      }
    }
    // Network errors that outlived the retries, and media errors that did not recover.
    restart();
  }

  function syncUnmute() {
    unmute.hidden = !video.muted || !active;
  }

  unmute.addEventListener('click', function () {
    video.muted = false;
    if (video.volume === 0) {
      video.volume = 1;
    }
    if (video.paused) {
      video.play().catch(function () {});
    }
    syncUnmute();
  });
  video.addEventListener('volumechange', syncUnmute);
  video.addEventListener('playing', function () {
    setStatus('');
    syncUnmute();
  });
  video.addEventListener('error', function () {
    if (active && player.mode === 'native') {
      restart();
    }
  });

  if (root.dataset.live === 'true') {
    start();
  }
})();
