// player.js plays the channel's live stream in one of three formats:
//
//   hls   Low-Latency HLS (fMP4 parts, blocking reload) from data-src, with hls.js
//         (static/vendor/hls.min.js) in lowLatencyMode, or natively where the browser
//         plays HLS itself (iOS Safari). The default.
//   dash  low-latency MPEG-DASH from #player's data-dash-src, with dash.js, loaded on
//         demand from data-dash-lib (static/vendor/dash.all.min.js).
//   ts    legacy HLS over MPEG-TS from data-ts-src, with hls.js and lowLatencyMode off.
//
// ?player=dash (or hls, ts) picks the format to start with; the HLS/DASH buttons switch
// while playing and keep the choice in the address. Both players catch up with the live
// edge by playing slightly faster, and a line under the video shows the current latency.
//
// Live DVR: where the page has #player[data-dvr-src] (the running recording's EVENT
// playlist, /vod/live/{name}/index.m3u8), "From the start" (fromStart()) switches hls.js
// to that playlist and seeks to its first fragment, so the whole broadcast so far is
// seekable; "Back to live" (toLive()) returns to the low-latency source of the chosen
// format. A channel that is not recorded answers 404 there and the player goes back to
// live, saying so.
//
// It exposes window.onairPlayer = {video, hls, dash, mode, protocol, dvr, restarts,
// latency(), use(), start(), stop(), fromStart(), toLive()} for channel.js and tests.
(function () {
  'use strict';

  var root = document.getElementById('channel');
  var video = document.getElementById('video');
  var box = document.getElementById('player');
  if (!root || !video || !box) {
    window.onairPlayer = null;
    return;
  }

  var sources = {
    hls: root.dataset.src,
    dash: box.dataset.dashSrc,
    ts: box.dataset.tsSrc
  };
  var dvrSrc = box.dataset.dvrSrc || '';
  var dvrStart = document.getElementById('dvr-start');
  var dvrLive = document.getElementById('dvr-live');
  var labels = { hls: 'LL-HLS', dash: 'DASH', ts: 'HLS (TS)' };
  var dashLib = box.dataset.dashLib;
  var unmute = document.getElementById('unmute');
  var status = document.getElementById('player-status');
  var latencyLine = document.getElementById('player-latency');
  var switches = box.querySelectorAll('[data-player]');

  var RESTART_MS = 3000;
  var TICK_MS = 1000;
  // hls.js adjusts its playback rate only near the target latency; further behind than
  // this (a long stall, a throttled background tab) the player jumps to the live edge.
  var JUMP_BEHIND_S = 4;
  var DVR_START_S = 0.1; // where "From the start" begins, in the recording's timeline
  // dash.js: target latency (the server's ServiceDescription also says 2 s) and catch-up.
  var DASH_LIVE_DELAY_S = 2;

  var active = false; // the stream should be playing
  var gen = 0; // bumped at every teardown; stale callbacks compare it
  var restartTimer = 0;
  var tickTimer = 0;
  var mediaErrors = 0;
  var lastMediaError = 0;

  var player = {
    video: video,
    hls: null, // the Hls instance while hls.js plays
    dash: null, // the dash.js MediaPlayer while dash.js plays
    mode: '', // the engine: 'hls.js', 'dash.js', 'native' or 'unsupported'
    protocol: initialProtocol(), // 'hls', 'dash' or 'ts'
    dvr: false, // playing the broadcast's recording from its start instead of the live edge
    restarts: 0, // times playback started over after an error
    latency: latency,
    use: use,
    start: start,
    stop: stop,
    fromStart: fromStart,
    toLive: toLive
  };
  window.onairPlayer = player;

  function initialProtocol() {
    var p = new URLSearchParams(window.location.search).get('player');
    return p && sources[p] ? p : 'hls';
  }

  function setStatus(text) {
    if (status) {
      status.textContent = text;
      status.hidden = !text;
    }
  }

  // latency returns how far behind the live edge playback is, in seconds, as the engine
  // measures it (NaN when unknown): hls.js from the playlist's edge and age, dash.js from
  // the MPD's availability times and the server clock (UTCTiming).
  function latency() {
    if (player.hls) {
      return player.hls.latency || NaN;
    }
    if (player.dash) {
      var l = player.dash.getCurrentLiveLatency();
      return typeof l === 'number' ? l : NaN;
    }
    if (player.mode === 'native' && video.seekable.length) {
      return video.seekable.end(video.seekable.length - 1) - video.currentTime;
    }
    return NaN;
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

  function hlsConfig(lowLatency) {
    var cfg = {
      startPosition: -1, // the live edge
      liveDurationInfinity: true,
      backBufferLength: 30,
      manifestLoadPolicy: loadPolicy(),
      playlistLoadPolicy: loadPolicy()
    };
    if (lowLatency) {
      // The target latency is the playlist's PART-HOLD-BACK (no liveSyncDuration here:
      // it would override it). Behind it, play up to 1.5× until caught up.
      cfg.lowLatencyMode = true;
      cfg.maxLiveSyncPlaybackRate = 1.5;
    } else {
      // Legacy HLS: three target durations behind the edge, no parts.
      cfg.lowLatencyMode = false;
      cfg.liveSyncDurationCount = 3;
    }
    return cfg;
  }

  function dashSettings() {
    return {
      debug: { logLevel: 3 }, // Debug.LOG_LEVEL_WARNING
      streaming: {
        delay: { liveDelay: DASH_LIVE_DELAY_S },
        liveCatchup: {
          enabled: true,
          // Rates are relative: from 0.8× (too close to the edge) to 1.5× (behind it).
          playbackRate: { min: -0.2, max: 0.5 },
          // Further than this from the target, seek instead.
          maxDrift: JUMP_BEHIND_S
        }
      }
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
    setDvr(false);
  }

  // fromStart plays the running broadcast's recording from its first segment.
  function fromStart() {
    if (!dvrSrc || !active) {
      return;
    }
    clearTimeout(restartTimer);
    setDvr(true);
    teardown();
    load();
  }

  // toLive leaves the recording for the live edge of the chosen format.
  function toLive() {
    if (!player.dvr) {
      return;
    }
    clearTimeout(restartTimer);
    setDvr(false);
    if (active) {
      teardown();
      load();
    }
  }

  function setDvr(on) {
    player.dvr = on;
    if (dvrStart) {
      dvrStart.hidden = on || !dvrSrc;
    }
    if (dvrLive) {
      dvrLive.hidden = !on;
    }
  }

  // use switches to another format, keeping it in the address so a reload keeps it.
  function use(protocol) {
    if (!sources[protocol]) {
      return;
    }
    var changed = protocol !== player.protocol;
    player.protocol = protocol;
    if (changed && player.dvr) {
      setDvr(false);
    }
    syncSwitches();
    if (window.history && window.history.replaceState) {
      var u = new URL(window.location.href);
      if (protocol === 'hls') {
        u.searchParams.delete('player');
      } else {
        u.searchParams.set('player', protocol);
      }
      window.history.replaceState(window.history.state, '', u.toString());
    }
    if (changed && active) {
      teardown();
      load();
    }
  }

  function load() {
    clearTimeout(restartTimer);
    setStatus('Connecting…');
    var my = gen;
    if (player.dvr) {
      loadDvr(my);
    } else if (player.protocol === 'dash') {
      loadDash(my);
    } else {
      loadHls(player.protocol === 'hls');
    }
    clearInterval(tickTimer);
    tickTimer = setInterval(tick, TICK_MS);
  }

  function loadHls(lowLatency) {
    var src = sources[player.protocol];
    if (window.Hls && window.Hls.isSupported()) {
      player.mode = 'hls.js';
      var hls = new window.Hls(hlsConfig(lowLatency));
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

  // loadDvr plays the recording's EVENT playlist with hls.js (no low-latency mode, no
  // catch-up) from just after the start of its first fragment: a start at exactly 0 can
  // stall on a first frame that B-frames put before it. The start goes in hls.js's own
  // startPosition: a seek of ours before the first append loses to hls.js, which then
  // moves the playhead to the start position it computed (the live edge for -1).
  function loadDvr(my) {
    if (window.Hls && window.Hls.isSupported()) {
      player.mode = 'hls.js';
      var cfg = hlsConfig(false);
      cfg.startPosition = DVR_START_S;
      cfg.manifestLoadPolicy = dvrLoadPolicy();
      cfg.playlistLoadPolicy = dvrLoadPolicy();
      var hls = new window.Hls(cfg);
      player.hls = hls;
      var sought = false;
      hls.on(window.Hls.Events.ERROR, onHlsError);
      hls.on(window.Hls.Events.MANIFEST_PARSED, play);
      hls.on(window.Hls.Events.LEVEL_LOADED, function (ev, data) {
        var frags = data.details && data.details.fragments;
        if (sought || my !== gen || !frags || !frags.length) {
          return;
        }
        sought = true;
        // A playlist whose first fragment starts later (a sliding window) puts the start
        // past what startPosition covers: seek there once the media is attached.
        if (frags[0].start > DVR_START_S) {
          video.currentTime = frags[0].start + DVR_START_S;
        }
      });
      hls.attachMedia(video);
      hls.loadSource(dvrSrc);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      player.mode = 'native';
      video.src = dvrSrc;
      video.addEventListener('loadedmetadata', function () {
        if (my === gen && video.seekable.length) {
          video.currentTime = video.seekable.start(0) + 0.1;
        }
      }, { once: true });
      play();
    } else {
      setDvr(false);
      load();
    }
  }

  // The recording's playlist is there from the first segment on; a 404 means the
  // broadcast is not recorded, so only a few retries.
  function dvrLoadPolicy() {
    var p = loadPolicy();
    p.default.errorRetry = { maxNumRetry: 2, retryDelayMs: 1000, maxRetryDelayMs: 2000 };
    return p;
  }

  function loadDash(my) {
    player.mode = 'dash.js';
    withDashLib(function (ok) {
      if (my !== gen || !active) {
        return; // torn down or switched while dash.js loaded
      }
      if (!ok || !window.dashjs.supportsMediaSource()) {
        player.mode = 'unsupported';
        setStatus(ok ? 'This browser cannot play DASH.' : 'The DASH player is missing: run make build.');
        return;
      }
      var d = window.dashjs.MediaPlayer().create();
      player.dash = d;
      d.updateSettings(dashSettings());
      d.on(window.dashjs.MediaPlayer.events.ERROR, function (e) {
        if (player.dash === d) {
          onDashError(e);
        }
      });
      video.muted = true;
      d.initialize(video, sources.dash, true);
      syncUnmute();
    });
  }

  // withDashLib loads dash.js once, on first use: most viewers never need its 800 kB.
  var dashLibWaiters = null;
  function withDashLib(cb) {
    if (window.dashjs) {
      cb(true);
      return;
    }
    if (!dashLib) {
      cb(false);
      return;
    }
    if (dashLibWaiters) {
      dashLibWaiters.push(cb);
      return;
    }
    dashLibWaiters = [cb];
    var s = document.createElement('script');
    s.src = dashLib;
    s.async = true;
    function done(ok) {
      var waiters = dashLibWaiters;
      dashLibWaiters = null;
      if (!ok) {
        s.remove();
      }
      waiters.forEach(function (w) {
        w(ok && !!window.dashjs);
      });
    }
    s.onload = function () {
      done(true);
    };
    s.onerror = function () {
      done(false);
    };
    document.head.appendChild(s);
  }

  function teardown() {
    gen++;
    clearInterval(tickTimer);
    if (player.hls) {
      player.hls.destroy();
      player.hls = null;
    }
    if (player.dash) {
      player.dash.reset();
      player.dash = null;
    }
    if (video.getAttribute('src')) {
      video.removeAttribute('src');
      video.load();
    }
    video.playbackRate = 1;
    showLatency();
  }

  // restart starts over after a pause while the stream should still play.
  function restart() {
    player.restarts++;
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
    if (player.dvr && data.type === window.Hls.ErrorTypes.NETWORK_ERROR) {
      // No recording to seek in (recording off, or it stopped): back to live.
      toLive();
      if (window.onair) {
        window.onair.toast('This broadcast is not recorded: playing live.');
      }
      return;
    }
    restart();
  }

  // dash.js reports on its error event what it could not recover from (a manifest or
  // segment that failed after its retries, a media error): start over.
  function onDashError() {
    restart();
  }

  // bufferedAhead returns the seconds of media buffered past the playhead.
  function bufferedAhead() {
    var b = video.buffered;
    for (var i = 0; i < b.length; i++) {
      if (b.start(i) <= video.currentTime + 0.1 && video.currentTime < b.end(i)) {
        return b.end(i) - video.currentTime;
      }
    }
    return 0;
  }

  // tick runs every second while a stream plays: it shows the latency and jumps to the
  // live edge when hls.js fell too far behind for its rate control. A player that is
  // behind because the network is too slow (nothing buffered ahead) does not jump: the jump
  // would abort the loads in flight, and hls.js would never measure the slow network and
  // switch to a lower rendition.
  function tick() {
    var hls = player.hls;
    if (hls && !player.dvr && !video.paused && hls.targetLatency !== null && hls.liveSyncPosition !== null) {
      if (hls.latency - hls.targetLatency > JUMP_BEHIND_S && bufferedAhead() >= 1) {
        video.currentTime = hls.liveSyncPosition;
      }
    }
    showLatency();
  }

  function showLatency() {
    if (!latencyLine) {
      return;
    }
    var l = latency();
    if (!player.hls && !player.dash && player.mode !== 'native') {
      latencyLine.textContent = '';
      return;
    }
    var text = player.dvr ? 'From the start' : labels[player.protocol];
    if (l > 0 && isFinite(l)) {
      text += ' · ' + l.toFixed(1) + ' s behind live';
    }
    if (video.playbackRate > 1.01) {
      text += ' · catching up ' + video.playbackRate.toFixed(2) + '×';
    }
    latencyLine.textContent = text;
  }

  function syncSwitches() {
    Array.prototype.forEach.call(switches, function (b) {
      var on = b.dataset.player === player.protocol;
      b.setAttribute('aria-pressed', String(on));
      b.classList.toggle('btn-ghost', !on);
    });
  }

  function syncUnmute() {
    if (unmute) {
      unmute.hidden = !video.muted || !active;
    }
  }

  Array.prototype.forEach.call(switches, function (b) {
    b.addEventListener('click', function () {
      use(b.dataset.player);
    });
  });
  syncSwitches();
  if (dvrStart) {
    dvrStart.addEventListener('click', fromStart);
  }
  if (dvrLive) {
    dvrLive.addEventListener('click', toLive);
  }
  setDvr(false);

  if (unmute) {
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
  }
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
