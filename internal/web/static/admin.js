// admin.js drives the site admin page: site settings, ban and unban, and ending a live
// stream.
(function () {
  'use strict';

  var o = window.onair;
  var form = document.getElementById('settings-form');
  if (!form) {
    return;
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    o.formError(form, '');
    o.busy(form, true);
    o.api('PATCH', '/api/v1/admin/settings', {
      site_name: form.elements.site_name.value.trim(),
      registration_open: form.elements.registration_open.checked
    }).then(function (st) {
      o.busy(form, false);
      form.elements.site_name.value = st.site_name;
      form.elements.registration_open.checked = st.registration_open;
      document.querySelector('.brand').lastChild.textContent = st.site_name;
      o.toast('Settings saved.');
    }, function (err) {
      o.busy(form, false);
      o.formError(form, err.message);
    });
  });

  function badge(cls, text, state) {
    var b = document.createElement('span');
    b.className = 'badge ' + cls;
    b.dataset.state = state;
    b.textContent = text;
    return b;
  }

  function actionButton(label, action, cls) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'btn btn-small ' + cls;
    b.dataset.action = action;
    b.textContent = label;
    return b;
  }

  var table = document.getElementById('users');
  table.addEventListener('click', function (ev) {
    var b = ev.target.closest('button[data-action]');
    if (!b) {
      return;
    }
    var row = b.closest('tr');
    var user = row.dataset.user;
    var path = '/api/v1/admin/users/' + encodeURIComponent(user) + '/';
    var action = b.dataset.action;
    if (action === 'ban' && !window.confirm('Ban @' + user + '? They are signed out, cannot log in, publish or chat, and a live stream of theirs is cut.')) {
      return;
    }
    if (action === 'end') {
      if (!window.confirm('End the live stream of @' + user + '?')) {
        return;
      }
      path = '/api/v1/admin/streams/' + encodeURIComponent(user) + '/end';
    } else {
      path += action;
    }
    b.disabled = true;
    o.api('POST', path).then(function (res) {
      var state = row.children[3];
      var live = state.querySelector('[data-state="live"]');
      var banned = state.querySelector('[data-state="banned"]');
      if (action === 'end' || (res && res.banned)) {
        if (live) {
          live.remove();
        }
        var end = row.querySelector('[data-action="end"]');
        if (end) {
          end.remove();
        }
      }
      if (action === 'ban') {
        state.appendChild(badge('badge-banned', 'Banned', 'banned'));
        b.replaceWith(actionButton('Unban', 'unban', 'btn-ghost'));
        o.toast('@' + user + ' is banned.');
      } else if (action === 'unban') {
        if (banned) {
          banned.remove();
        }
        b.replaceWith(actionButton('Ban', 'ban', 'btn-danger'));
        o.toast('@' + user + ' is unbanned.');
      } else {
        o.toast('The stream of @' + user + ' has ended.');
      }
    }, function (err) {
      b.disabled = false;
      o.toast(err.message);
    });
  });
})();
