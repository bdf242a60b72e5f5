// comments.js posts, edits and deletes comments on the channel's live video. The page is
// rendered with the comments and the buttons its viewer may use; new ones are built here
// with DOM APIs and textContent.
(function () {
  'use strict';

  var box = document.getElementById('comments');
  if (!box || !window.onair) {
    return;
  }
  var o = window.onair;
  var video = box.dataset.video;
  var me = box.dataset.user;
  var moderator = box.dataset.moderator === 'true';
  var list = document.getElementById('comment-list');
  var count = document.getElementById('comment-count');
  var form = document.getElementById('comment-form');

  function recount(delta) {
    count.textContent = String(Number(count.textContent) + delta);
  }

  function button(label, action, cls) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = cls || 'linkish';
    b.dataset.action = action;
    b.textContent = label;
    return b;
  }

  function build(c) {
    var li = document.createElement('li');
    li.className = 'comment';
    li.id = 'comment-' + c.id;
    li.dataset.id = String(c.id);
    var head = document.createElement('p');
    head.className = 'comment-head';
    var who = document.createElement('a');
    who.href = '/@' + encodeURIComponent(c.user);
    who.textContent = '@' + c.user;
    var t = document.createElement('time');
    t.dateTime = c.created_at;
    t.textContent = 'just now';
    head.append(who, ' ', t);
    var text = document.createElement('p');
    text.className = 'comment-text';
    text.textContent = c.text;
    li.append(head, text);
    var mine = c.user === me;
    if (mine || moderator) {
      var actions = document.createElement('p');
      actions.className = 'comment-actions';
      if (mine) {
        actions.appendChild(button('Edit', 'edit'));
      }
      actions.appendChild(button('Delete', 'delete', 'linkish danger'));
      li.appendChild(actions);
    }
    return li;
  }

  if (form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      o.formError(form, '');
      var text = form.elements.text.value;
      if (!text.trim()) {
        return;
      }
      o.busy(form, true);
      o.api('POST', '/api/v1/videos/' + video + '/comments', { text: text }).then(function (c) {
        o.busy(form, false);
        form.reset();
        list.appendChild(build(c));
        recount(1);
      }, function (err) {
        o.busy(form, false);
        o.formError(form, err.message);
      });
    });
  }

  function startEdit(li) {
    if (li.querySelector('.comment-edit')) {
      return;
    }
    var text = li.querySelector('.comment-text');
    var edit = document.createElement('form');
    edit.className = 'comment-edit';
    var label = document.createElement('label');
    label.className = 'visually-hidden';
    label.htmlFor = 'edit-' + li.dataset.id;
    label.textContent = 'Edit comment';
    var area = document.createElement('textarea');
    area.id = 'edit-' + li.dataset.id;
    area.rows = 3;
    area.maxLength = 5000;
    area.value = text.textContent;
    var save = document.createElement('button');
    save.type = 'submit';
    save.className = 'btn btn-small';
    save.textContent = 'Save';
    var cancel = button('Cancel', 'cancel', 'btn btn-small btn-ghost');
    var err = document.createElement('p');
    err.className = 'form-error';
    err.setAttribute('role', 'alert');
    err.hidden = true;
    var foot = document.createElement('div');
    foot.className = 'form-foot';
    foot.append(err, cancel, save);
    edit.append(label, area, foot);
    text.hidden = true;
    text.after(edit);
    area.focus();

    cancel.addEventListener('click', function () {
      edit.remove();
      text.hidden = false;
    });
    edit.addEventListener('submit', function (ev) {
      ev.preventDefault();
      o.api('PATCH', '/api/v1/comments/' + li.dataset.id, { text: area.value }).then(function (c) {
        text.textContent = c.text;
        edit.remove();
        text.hidden = false;
        var head = li.querySelector('.comment-head');
        if (!head.querySelector('.edited')) {
          var mark = document.createElement('span');
          mark.className = 'muted edited';
          mark.textContent = '(edited)';
          head.append(' ', mark);
        }
      }, function (e) {
        err.textContent = e.message;
        err.hidden = false;
      });
    });
  }

  list.addEventListener('click', function (ev) {
    var b = ev.target.closest('button[data-action]');
    if (!b) {
      return;
    }
    var li = b.closest('.comment');
    if (b.dataset.action === 'edit') {
      startEdit(li);
    } else if (b.dataset.action === 'delete') {
      if (!window.confirm('Delete this comment?')) {
        return;
      }
      o.api('DELETE', '/api/v1/comments/' + li.dataset.id).then(function () {
        li.remove();
        recount(-1);
      }, function (err) {
        o.toast(err.message);
      });
    }
  });
})();
