// dashboard.js drives the broadcast dashboard: the stream key (masked until revealed;
// fetched from the API only when revealed or copied, never rendered into the page), key
// regeneration, the channel settings form, the recording switch, and the stream health,
// polled while the page is open.
(function () {
  'use strict';

  var o = window.onair;
  var POLL_MS = 5000;
  var MASK = '••••••••••••••••••••';

  var keyInput = document.getElementById('obs-key');
  var reveal = document.getElementById('key-reveal');
  var copyBtn = document.getElementById('key-copy');
  var reset = document.getElementById('key-reset');
  if (!keyInput) {
    return;
  }
  var revealed = false;

  function fetchKey() {
    return o.api('GET', '/api/v1/me/stream-key').then(function (res) {
      return res.stream_key;
    });
  }

  function show(key) {
    revealed = key !== null;
    keyInput.value = revealed ? key : MASK;
    keyInput.dataset.masked = String(!revealed);
    reveal.textContent = revealed ? 'Hide' : 'Reveal';
    reveal.setAttribute('aria-pressed', String(revealed));
  }

  reveal.addEventListener('click', function () {
    if (revealed) {
      show(null);
      return;
    }
    fetchKey().then(show, function (err) {
      o.toast(err.message);
    });
  });

  copyBtn.addEventListener('click', function () {
    fetchKey().then(function (key) {
      // The fallback copy needs a field holding the key; it is masked again afterwards.
      o.copy(key, revealed ? keyInput : null);
    }, function (err) {
      o.toast(err.message);
    });
  });

  reset.addEventListener('click', function () {
    var ok = window.confirm('Regenerate your stream key?\n\nThe current key stops working at once, ' +
      'and a live stream that uses it is cut. You will have to paste the new key into OBS.');
    if (!ok) {
      return;
    }
    o.api('POST', '/api/v1/me/stream-key').then(function (res) {
      if (revealed) {
        show(res.stream_key);
      }
      o.toast('New stream key created. Update it in OBS.');
    }, function (err) {
      o.toast(err.message);
    });
  });

  // Channel settings.
  var form = document.getElementById('channel-form');
  var maxTags = Number(form.dataset.maxTags) || 10;

  function parseTags(text) {
    var seen = {};
    var out = [];
    text.split(/[\s,]+/).forEach(function (t) {
      t = t.replace(/^#+/, '').toLowerCase();
      if (t && !seen[t]) {
        seen[t] = true;
        out.push(t);
      }
    });
    return out;
  }

  function applyChannel(ch) {
    form.elements.title.value = ch.title;
    form.elements.description.value = ch.description;
    form.elements.tags.value = ch.tags.join(', ');
    form.elements.recording.checked = ch.recording;
    form.elements.transcode.checked = ch.transcode;
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    o.formError(form, '');
    var f = form.elements;
    var tags = parseTags(f.tags.value);
    if (tags.length > maxTags) {
      o.formError(form, 'Use at most ' + maxTags + ' tags.');
      return;
    }
    o.busy(form, true);
    o.api('PATCH', '/api/v1/me/channel', {
      title: f.title.value.trim(),
      description: f.description.value,
      tags: tags,
      recording: f.recording.checked,
      transcode: f.transcode.checked
    }).then(function (ch) {
      o.busy(form, false);
      applyChannel(ch);
      o.toast('Channel saved.');
    }, function (err) {
      o.busy(form, false);
      o.formError(form, err.message);
    });
  });

  var recording = form.elements.recording;
  recording.addEventListener('change', function () {
    var on = recording.checked;
    o.api('PATCH', '/api/v1/me/channel', { recording: on }).then(function () {
      o.toast(on ? 'Recording is on for your next broadcasts.' : 'Recording is off.');
    }, function (err) {
      recording.checked = !on;
      o.toast(err.message);
    });
  });

  var transcode = form.elements.transcode;
  transcode.addEventListener('change', function () {
    var on = transcode.checked;
    o.api('PATCH', '/api/v1/me/channel', { transcode: on }).then(function () {
      o.toast(on ? 'Lower qualities are on for your next broadcasts.' : 'Lower qualities are off.');
    }, function (err) {
      transcode.checked = !on;
      o.toast(err.message);
    });
  });

  // Stream status and health.
  var status = document.getElementById('status');
  var api = status.dataset.api;
  var el = function (id) {
    return document.getElementById(id);
  };

  function text(id, v) {
    el(id).textContent = v === '' || v === null || v === undefined ? '–' : String(v);
  }

  function render(s) {
    var live = !!s;
    el('status-live').hidden = !live;
    el('status-offline').hidden = live;
    el('status-help').hidden = live;
    el('health').hidden = !live;
    if (!live) {
      return;
    }
    text('h-video', s.video_codec ? s.video_codec.toUpperCase() : '');
    text('h-resolution', s.width && s.height ? s.width + '×' + s.height : '');
    text('h-fps', s.fps ? s.fps + ' fps' : '');
    text('h-bitrate', s.bitrate_kbps ? Math.round(s.bitrate_kbps) + ' kbit/s' : '');
    text('h-keyframe', s.keyframe_interval ? s.keyframe_interval + ' s' : '');
    text('h-audio', s.audio_codec ? s.audio_codec.toUpperCase() : '');
    text('h-viewers', s.viewers);
  }

  function poll() {
    o.api('GET', api).then(render, function (err) {
      if (err.status === 404) {
        render(null);
      }
    }).then(function () {
      setTimeout(poll, POLL_MS);
    });
  }
  setTimeout(poll, POLL_MS);
})();
