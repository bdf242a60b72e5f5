// chat.js is the live chat beside the player. It keeps a WebSocket to
// /api/v1/channels/{name}/chat (reconnecting with backoff), loads the recent history
// (from a "history" frame or the history endpoint, whichever comes), sends messages for
// signed-in users, and gives the channel owner and admins delete, time-out and ban
// controls. Message text is only ever set with textContent; http(s) URLs become links
// built with DOM APIs; no HTML is ever parsed from chat data.
(function () {
  'use strict';

  var box = document.getElementById('chat');
  if (!box) {
    return;
  }

  var MAX_MESSAGES = 200;
  var TIMEOUT_SECONDS = 600;
  var log = document.getElementById('chat-log');
  var status = document.getElementById('chat-status');
  var form = document.getElementById('chat-form');
  var input = document.getElementById('chat-text');
  var unbanForm = document.getElementById('chat-unban');
  var path = box.dataset.path;
  var me = box.dataset.user;
  var owner = box.dataset.owner;
  var moderator = box.dataset.moderator === 'true';

  var items = new Map(); // message id → <li>
  var ws = null;
  var backoff = 1000;
  var statusTimer = 0;

  function setStatus(text, sticky) {
    status.textContent = text;
    status.hidden = !text;
    clearTimeout(statusTimer);
    if (text && !sticky) {
      statusTimer = setTimeout(function () {
        setStatus('');
      }, 5000);
    }
  }

  var URL_RE = /https?:\/\/[^\s<>"']+/gi;

  // appendText adds text to parent, turning http(s) URLs into safe links.
  function appendText(parent, text) {
    var last = 0;
    var m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text)) !== null) {
      var url = m[0].replace(/[.,;:!?)\]}'"]+$/, '');
      var start = m.index;
      URL_RE.lastIndex = start + url.length;
      var href = null;
      try {
        var u = new URL(url);
        if (u.protocol === 'http:' || u.protocol === 'https:') {
          href = u.href;
        }
      } catch (e) {
        href = null;
      }
      if (!href) {
        continue;
      }
      if (start > last) {
        parent.appendChild(document.createTextNode(text.slice(last, start)));
      }
      var a = document.createElement('a');
      a.href = href;
      a.textContent = url;
      a.rel = 'nofollow noopener noreferrer';
      a.target = '_blank';
      parent.appendChild(a);
      last = start + url.length;
    }
    if (last < text.length) {
      parent.appendChild(document.createTextNode(text.slice(last)));
    }
  }

  function timeText(iso) {
    var d = new Date(iso);
    if (isNaN(d)) {
      return '';
    }
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function button(label, action, cls) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = cls || 'linkish';
    b.dataset.action = action;
    b.textContent = label;
    return b;
  }

  function buildMessage(m) {
    var li = document.createElement('li');
    li.className = 'chat-msg';
    li.dataset.id = String(m.id);
    li.dataset.user = m.user;
    if (m.user === me) {
      li.classList.add('mine');
    }

    var who = document.createElement('a');
    who.className = 'chat-user';
    who.href = '/@' + encodeURIComponent(m.user);
    who.textContent = m.user;
    if (m.user === owner) {
      who.classList.add('chat-owner');
    }
    var text = document.createElement('span');
    text.className = 'chat-text';
    appendText(text, String(m.text));
    var t = document.createElement('time');
    t.className = 'chat-time';
    t.dateTime = m.time;
    t.textContent = timeText(m.time);
    li.append(who, ' ', text, ' ', t);

    if (moderator) {
      var toggle = button('⋯', 'tools', 'chat-mod');
      toggle.setAttribute('aria-label', 'Moderate message from ' + m.user);
      toggle.setAttribute('aria-expanded', 'false');
      var tools = document.createElement('div');
      tools.className = 'chat-tools';
      tools.hidden = true;
      tools.appendChild(button('Delete', 'delete'));
      if (m.user !== owner && m.user !== me) {
        tools.appendChild(button('Time out 10 min', 'timeout'));
        tools.appendChild(button('Ban', 'ban', 'linkish danger'));
      }
      li.append(toggle, tools);
    }
    return li;
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  // add inserts a message in ID order, once.
  function add(m) {
    if (!m || typeof m.id !== 'number' || items.has(m.id)) {
      return;
    }
    var stick = nearBottom();
    var li = buildMessage(m);
    var next = null;
    var last = log.lastElementChild;
    if (last && Number(last.dataset.id) > m.id) {
      for (var el = log.firstElementChild; el; el = el.nextElementSibling) {
        if (Number(el.dataset.id) > m.id) {
          next = el;
          break;
        }
      }
    }
    log.insertBefore(li, next);
    items.set(m.id, li);
    while (items.size > MAX_MESSAGES) {
      var first = log.firstElementChild;
      items.delete(Number(first.dataset.id));
      first.remove();
    }
    if (stick) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function remove(id) {
    var li = items.get(id);
    if (li) {
      items.delete(id);
      li.remove();
    }
  }

  function addAll(list) {
    (list || []).forEach(add);
  }

  function loadHistory() {
    fetch(path + '/history', { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        return res.ok ? res.json() : null;
      })
      .then(function (data) {
        addAll(Array.isArray(data) ? data : data && data.messages);
      })
      .catch(function () {});
  }

  function onFrame(ev) {
    var f;
    try {
      f = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    switch (f.type) {
      case 'message':
        add(f);
        break;
      case 'history':
        addAll(f.messages);
        break;
      case 'delete':
        remove(f.id);
        break;
      case 'error':
        setStatus(String(f.message || 'Chat error.'));
        break;
      default:
        if (f.message) {
          setStatus(String(f.message));
        }
    }
  }

  function connect() {
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      retry();
      return;
    }
    ws.addEventListener('open', function () {
      backoff = 1000;
      setStatus('');
      loadHistory();
    });
    ws.addEventListener('message', onFrame);
    ws.addEventListener('close', function () {
      ws = null;
      retry();
    });
  }

  function retry() {
    setStatus('Reconnecting…', true);
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15000);
  }

  function send(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      setStatus('Not connected. Trying again…');
      return false;
    }
    ws.send(JSON.stringify(frame));
    return true;
  }

  if (form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var text = input.value.trim();
      if (text && send({ type: 'message', text: text })) {
        input.value = '';
      }
    });
  }

  if (unbanForm) {
    unbanForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var user = unbanForm.elements.user.value.trim().toLowerCase();
      if (user && send({ type: 'unban', user: user })) {
        unbanForm.reset();
        setStatus('Lifted the ban of ' + user + '.');
      }
    });
  }

  log.addEventListener('click', function (ev) {
    var b = ev.target.closest('button[data-action]');
    if (!b) {
      return;
    }
    var li = b.closest('.chat-msg');
    var id = Number(li.dataset.id);
    var user = li.dataset.user;
    var tools = li.querySelector('.chat-tools');
    var toggle = li.querySelector('.chat-mod');
    switch (b.dataset.action) {
      case 'tools':
        tools.hidden = !tools.hidden;
        toggle.setAttribute('aria-expanded', String(!tools.hidden));
        return;
      case 'delete':
        send({ type: 'delete', id: id });
        break;
      case 'timeout':
        if (send({ type: 'timeout', user: user, seconds: TIMEOUT_SECONDS })) {
          setStatus(user + ' is timed out for 10 minutes.');
        }
        break;
      case 'ban':
        if (window.confirm('Ban ' + user + ' from this chat?') && send({ type: 'ban', user: user })) {
          setStatus(user + ' is banned from this chat.');
        }
        break;
    }
    tools.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
  });

  connect();
})();
