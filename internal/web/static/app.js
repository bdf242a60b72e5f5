// app.js runs on every page. It provides window.onair (api: fetch with the CSRF token and
// the API's JSON errors; copy; toast; formError), wires [data-copy] buttons, and keeps the
// notification bell up to date for signed-in users, showing a browser Notification when a
// followed channel goes live while a page is open.
(function () {
  'use strict';

  var BELL_POLL_MS = 15000;
  var meta = document.querySelector('meta[name="csrf-token"]');

  function csrfToken() {
    return meta ? meta.content : '';
  }

  // api calls the JSON API. It resolves with the decoded body (null for 204) and rejects
  // with an Error whose message is the API's error message.
  function api(method, path, body) {
    var opts = {
      method: method,
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
      cache: 'no-store'
    };
    if (method !== 'GET' && method !== 'HEAD' && csrfToken()) {
      opts.headers['X-CSRF-Token'] = csrfToken();
    }
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (res) {
      if (res.status === 204) {
        return null;
      }
      return res.json().catch(function () {
        return null;
      }).then(function (data) {
        if (!res.ok) {
          var e = data && data.error;
          var err = new Error(e && e.message ? e.message : 'Request failed (' + res.status + ').');
          err.status = res.status;
          err.code = e && e.code;
          throw err;
        }
        return data;
      });
    }, function () {
      throw new Error('Network error: check your connection and try again.');
    });
  }

  var toastEl = document.getElementById('toast');
  var toastTimer = 0;

  // toast shows a short message at the bottom of the page.
  function toast(text) {
    if (!toastEl) {
      return;
    }
    toastEl.textContent = text;
    toastEl.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () {
      toastEl.hidden = true;
    }, 3500);
  }

  // copy puts text on the clipboard; input (optional) is selected as a fallback where the
  // Clipboard API is missing (plain http on a non-local host).
  function copy(text, input) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () {
        toast('Copied.');
      }, function () {
        fallbackCopy(text, input);
      });
    }
    fallbackCopy(text, input);
    return Promise.resolve();
  }

  function fallbackCopy(text, input) {
    var el = input;
    var temp = false;
    if (!el) {
      el = document.createElement('textarea');
      el.value = text;
      el.setAttribute('readonly', '');
      el.className = 'offscreen';
      document.body.appendChild(el);
      temp = true;
    }
    var was = el.value;
    el.value = text;
    el.focus();
    el.select();
    var ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (e) {
      ok = false;
    }
    if (temp) {
      document.body.removeChild(el);
    } else {
      el.value = was;
      el.select();
    }
    toast(ok ? 'Copied.' : 'Press Ctrl+C (⌘C) to copy.');
  }

  // formError shows (or, with an empty text, hides) the error line of a form.
  function formError(form, text) {
    var el = form.querySelector('.form-error');
    if (!el) {
      if (text) {
        toast(text);
      }
      return;
    }
    el.textContent = text || '';
    el.hidden = !text;
  }

  // busy disables a form's submit button while a call runs.
  function busy(form, on) {
    var btn = form.querySelector('[type="submit"]');
    if (btn) {
      btn.disabled = on;
    }
  }

  window.onair = { api: api, toast: toast, copy: copy, formError: formError, busy: busy, csrfToken: csrfToken };

  document.addEventListener('click', function (ev) {
    var btn = ev.target.closest('[data-copy]');
    if (!btn) {
      return;
    }
    var input = document.getElementById(btn.dataset.copy);
    if (input) {
      copy(input.value, input);
    }
  });

  // Close the account menu on Escape and on a click elsewhere.
  var menu = document.querySelector('.menu');
  if (menu) {
    document.addEventListener('click', function (ev) {
      if (menu.open && !menu.contains(ev.target)) {
        menu.open = false;
      }
    });
    document.addEventListener('keydown', function (ev) {
      if (ev.key === 'Escape' && menu.open) {
        menu.open = false;
        menu.querySelector('summary').focus();
      }
    });
  }

  // The bell.
  if (!document.body.dataset.user) {
    return;
  }
  var bell = document.getElementById('bell');
  var bellCount = document.getElementById('bell-count');
  var newestSeen = -1; // the newest notification ID known when the page loaded, then since

  function setUnread(n) {
    if (!bell) {
      return;
    }
    bellCount.textContent = String(n);
    bellCount.hidden = n === 0;
    bell.setAttribute('aria-label', n ? 'Notifications, ' + n + ' unread' : 'Notifications');
  }

  function notify(n) {
    if (!('Notification' in window) || Notification.permission !== 'granted') {
      return;
    }
    try {
      var note = new Notification(n.text, { tag: 'onair-' + n.id, body: 'Watch @' + n.channel + ' now.' });
      note.onclick = function () {
        window.focus();
        location.assign('/@' + encodeURIComponent(n.channel));
      };
    } catch (e) {
      // Some browsers (Android Chrome) only notify from a service worker.
    }
  }

  // bellGen counts outside changes of the count (notifications.js marking all read), so
  // that a poll answered before such a change does not undo it.
  var bellGen = 0;

  function pollBell() {
    var gen = bellGen;
    api('GET', '/api/v1/me/notifications').then(function (data) {
      if (gen === bellGen) {
        setUnread(data.unread);
      }
      var list = data.notifications || [];
      var newest = newestSeen;
      list.forEach(function (n) {
        if (newestSeen >= 0 && n.id > newestSeen && !n.read_at && n.kind === 'live') {
          notify(n);
        }
        newest = Math.max(newest, n.id);
      });
      newestSeen = Math.max(newest, 0);
      setTimeout(pollBell, BELL_POLL_MS);
    }, function (err) {
      if (err.status !== 401) {
        setTimeout(pollBell, BELL_POLL_MS);
      }
    });
  }
  pollBell();

  window.onair.setUnread = function (n) {
    bellGen++;
    setUnread(n);
  };
})();
