// account.js drives the account forms: log in, sign up, change password, API tokens and
// account deletion. Each form posts JSON to the API with window.onair.api.
(function () {
  'use strict';

  var o = window.onair;

  function on(id, handler) {
    var form = document.getElementById(id);
    if (!form) {
      return;
    }
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      o.formError(form, '');
      var done = function () {
        o.busy(form, false);
      };
      o.busy(form, true);
      var p = handler(form, form.elements);
      if (!p) {
        done();
        return;
      }
      p.then(done, function (err) {
        done();
        o.formError(form, err.message);
      });
    });
  }

  function safeNext(next) {
    return next && next.charAt(0) === '/' && next.charAt(1) !== '/' && next.charAt(1) !== '\\' ? next : '/';
  }

  on('login-form', function (form, f) {
    return o.api('POST', '/api/v1/login', {
      username: f.username.value.trim(),
      password: f.password.value
    }).then(function () {
      location.assign(safeNext(form.dataset.next));
    });
  });

  on('register-form', function (form, f) {
    var name = f.username.value.trim().toLowerCase();
    if (!/^[a-z0-9_]{3,30}$/.test(name)) {
      o.formError(form, 'Username must be 3 to 30 characters of a-z, 0-9 and _.');
      return null;
    }
    return o.api('POST', '/api/v1/register', {
      username: name,
      email: f.email.value.trim(),
      password: f.password.value
    }).then(function () {
      location.assign(safeNext(form.dataset.next));
    });
  });

  on('password-form', function (form, f) {
    if (f.new_password.value !== f.new_password2.value) {
      o.formError(form, 'The two new passwords differ.');
      return null;
    }
    return o.api('POST', '/api/v1/me/password', {
      old_password: f.old_password.value,
      new_password: f.new_password.value
    }).then(function () {
      form.reset();
      o.toast('Password changed. Other devices are signed out.');
    });
  });

  on('token-form', function (form, f) {
    var errEl = document.getElementById('token-error');
    errEl.hidden = true;
    return o.api('POST', '/api/v1/tokens', { name: f.name.value.trim() }).then(function (res) {
      document.getElementById('token-value').value = res.token;
      document.getElementById('token-result').hidden = false;
      form.reset();
    }, function (err) {
      errEl.textContent = err.message;
      errEl.hidden = false;
    });
  });

  on('delete-form', function (form, f) {
    if (!f.confirm.checked) {
      o.formError(form, 'Tick the box to confirm.');
      return null;
    }
    if (!f.password.value) {
      o.formError(form, 'Enter your password.');
      return null;
    }
    if (!window.confirm('Delete your account for good? This cannot be undone.')) {
      return null;
    }
    return o.api('DELETE', '/api/v1/me', { password: f.password.value }).then(function () {
      location.assign('/');
    });
  });
})();
