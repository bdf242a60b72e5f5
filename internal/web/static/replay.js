// replay.js plays a replay (templates/replay.html): hls.js on the recording's playlist
// (static/vendor/hls.min.js), or natively where the browser plays HLS itself. A finished
// recording has a VOD playlist; one still being written has an EVENT playlist, which
// plays from its start and stays seekable back to it while it grows. For the owner it
// renames the replay, and for the owner and admins it deletes it. Titles are only ever
// set with textContent and value.
//
// It exposes window.onairReplay = {video, hls, mode, seek(t)} for tests.
(function () {
  'use strict';

  var root = document.getElementById('replay');
  var video = document.getElementById('video');
  if (!root) {
    return;
  }
  var o = window.onair;
  var id = root.dataset.id;
  var status = document.getElementById('player-status');
  var unmute = document.getElementById('unmute');

  function setStatus(text) {
    if (status) {
      status.textContent = text;
      status.hidden = !text;
    }
  }

  var replay = { video: video, hls: null, mode: '', seek: seek };
  window.onairReplay = replay;

  // seek moves playback to t seconds from the start of the recording. The first fragment
  // of a playlist may start a little after 0 (and a seek to exactly its start can stall
  // on B-frames), so times are relative to it.
  function seek(t) {
    if (!video) {
      return;
    }
    var first = 0;
    var det = replay.hls && replay.hls.latestLevelDetails;
    if (det && det.fragments && det.fragments.length) {
      first = det.fragments[0].start;
    }
    video.currentTime = first + Math.max(t, 0.1);
  }

  function play() {
    video.muted = true;
    var p = video.play();
    if (p && p.catch) {
      p.catch(function () {
        setStatus('Press play to start.');
      });
    }
    syncUnmute();
  }

  function syncUnmute() {
    if (unmute) {
      unmute.hidden = !video.muted;
    }
  }

  function load() {
    var src = root.dataset.src;
    if (window.Hls && window.Hls.isSupported()) {
      replay.mode = 'hls.js';
      var hls = new window.Hls({
        // From the beginning, also for the EVENT playlist of a running recording (hls.js
        // would start it at the live edge).
        startPosition: 0,
        lowLatencyMode: false,
        liveDurationInfinity: true,
        backBufferLength: 60
      });
      replay.hls = hls;
      hls.on(window.Hls.Events.MANIFEST_PARSED, play);
      hls.on(window.Hls.Events.ERROR, function (ev, data) {
        if (!data.fatal) {
          return;
        }
        if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
          return;
        }
        setStatus('The replay could not be loaded. Try again later.');
      });
      hls.attachMedia(video);
      hls.loadSource(src);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      replay.mode = 'native';
      video.src = src;
      play();
    } else {
      replay.mode = 'unsupported';
      setStatus('This browser cannot play HLS. Download the MP4 instead.');
    }
  }

  if (video) {
    video.addEventListener('playing', function () {
      setStatus('');
    });
    video.addEventListener('volumechange', syncUnmute);
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
    load();
  }

  if (!o) {
    return;
  }

  // Rename (the owner).
  var title = document.getElementById('replay-title');
  var openRename = document.getElementById('rename-open');
  var form = document.getElementById('rename-form');
  if (openRename && form) {
    var input = form.elements.title;
    var cancel = document.getElementById('rename-cancel');
    openRename.addEventListener('click', function () {
      input.value = title.textContent;
      form.hidden = false;
      input.focus();
      input.select();
    });
    cancel.addEventListener('click', function () {
      o.formError(form, '');
      form.hidden = true;
    });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      o.formError(form, '');
      o.busy(form, true);
      o.api('PATCH', '/api/v1/recordings/' + id, { title: input.value }).then(function (rec) {
        o.busy(form, false);
        title.textContent = rec.title;
        document.title = rec.title + document.title.slice(document.title.lastIndexOf(' · '));
        form.hidden = true;
        o.toast('Renamed.');
      }, function (err) {
        o.busy(form, false);
        o.formError(form, err.message);
      });
    });
  }

  // Delete (the owner and admins).
  var del = document.getElementById('replay-delete');
  if (del) {
    del.addEventListener('click', function () {
      if (!window.confirm('Delete this replay for good? Its comments go with it.')) {
        return;
      }
      del.disabled = true;
      o.api('DELETE', '/api/v1/recordings/' + id).then(function () {
        if (replay.hls) {
          replay.hls.destroy();
          replay.hls = null;
        }
        window.location.assign(root.dataset.channelUrl + '#replays');
      }, function (err) {
        del.disabled = false;
        o.toast(err.message);
      });
    });
  }
})();
