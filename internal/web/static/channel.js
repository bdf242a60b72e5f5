// channel.js keeps a channel page (and the embed page) in step with the stream: it polls
// /api/v1/streams/{name} and switches between the player and the offline card without a
// reload, starting and stopping window.onairPlayer (player.js), and shows the live viewer
// count. On the channel page it also drives the follow button.
(function () {
  'use strict';

  var root = document.getElementById('channel');
  if (!root) {
    return;
  }

  var POLL_MS = 4000;
  var api = root.dataset.api;
  var live = root.dataset.live === 'true';
  var playerBox = document.getElementById('player');
  var offline = document.getElementById('offline');
  var badge = document.getElementById('live-badge');
  var lastLive = document.getElementById('last-live');
  var meta = document.getElementById('stream-meta');
  var viewers = document.getElementById('viewers');

  function ago(iso) {
    var s = (Date.now() - Date.parse(iso)) / 1000;
    var units = [['day', 86400], ['hour', 3600], ['minute', 60]];
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(s / units[i][1]);
      if (n >= 1) {
        return n + ' ' + units[i][0] + (n === 1 ? '' : 's') + ' ago';
      }
    }
    return 'just now';
  }

  function span(text) {
    var el = document.createElement('span');
    el.textContent = text;
    return el;
  }

  function renderMeta(s) {
    if (viewers) {
      viewers.textContent = s.viewers + ' watching';
    }
    if (!meta) {
      return;
    }
    var parts = [];
    if (s.video_codec) {
      parts.push(span(s.video_codec.toUpperCase()));
    }
    if (s.width && s.height) {
      parts.push(span(s.width + '×' + s.height));
    }
    if (s.fps) {
      parts.push(span(s.fps + ' fps'));
    }
    if (s.audio_codec) {
      parts.push(span(s.audio_codec.toUpperCase()));
    }
    if (s.started_at) {
      parts.push(span('started ' + ago(s.started_at)));
    }
    meta.replaceChildren.apply(meta, parts);
  }

  function show(el, on) {
    if (el) {
      el.hidden = !on;
    }
  }

  function setLive(next) {
    if (next === live) {
      return;
    }
    live = next;
    root.dataset.live = String(live);
    show(playerBox, live);
    show(offline, !live);
    show(badge, live);
    show(viewers, live);
    var player = window.onairPlayer;
    if (live) {
      if (player) {
        player.start();
      }
      return;
    }
    if (player) {
      player.stop();
    }
    if (lastLive) {
      var t = document.createElement('time');
      t.dateTime = new Date().toISOString();
      t.textContent = 'just now';
      lastLive.replaceChildren('last live ', t);
    }
  }

  function poll() {
    fetch(api, { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (res.status === 404) {
          setLive(false);
          return null;
        }
        if (!res.ok) {
          return null; // keep the current state through server hiccups
        }
        return res.json().then(function (s) {
          renderMeta(s);
          setLive(true);
        });
      })
      .catch(function () {}) // offline for a moment: keep the current state
      .then(function () {
        setTimeout(poll, POLL_MS);
      });
  }

  setTimeout(poll, POLL_MS);

  // Follow button (signed-in visitors of someone else's channel).
  var follow = document.getElementById('follow');
  var followers = document.getElementById('followers');
  if (!follow || !window.onair) {
    return;
  }
  var name = root.dataset.channel;

  function renderFollow(following, count) {
    follow.dataset.following = String(following);
    follow.setAttribute('aria-pressed', String(following));
    follow.textContent = following ? 'Following' : 'Follow';
    follow.classList.toggle('btn-ghost', following);
    followers.textContent = count + (count === 1 ? ' follower' : ' followers');
  }

  follow.addEventListener('mouseenter', function () {
    if (follow.dataset.following === 'true') {
      follow.textContent = 'Unfollow';
    }
  });
  follow.addEventListener('mouseleave', function () {
    if (follow.dataset.following === 'true') {
      follow.textContent = 'Following';
    }
  });

  follow.addEventListener('click', function () {
    var following = follow.dataset.following === 'true';
    follow.disabled = true;
    window.onair.api(following ? 'DELETE' : 'PUT', '/api/v1/channels/' + encodeURIComponent(name) + '/follow')
      .then(function (res) {
        follow.disabled = false;
        renderFollow(res.following, res.followers);
        if (res.following) {
          window.onair.toast('You will be notified when @' + name + ' goes live.');
          // Asking on this click is the moment the user shows they want to hear about it.
          if ('Notification' in window && Notification.permission === 'default') {
            Notification.requestPermission();
          }
        }
      }, function (err) {
        follow.disabled = false;
        window.onair.toast(err.message);
      });
  });
})();
