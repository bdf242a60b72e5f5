// notifications.js marks the notifications read once the page shows them, and offers to
// turn on browser notifications (asking only when the button is clicked).
(function () {
  'use strict';

  var o = window.onair;
  if (document.querySelector('.notification.unread')) {
    o.api('POST', '/api/v1/me/notifications/read').then(function () {
      if (o.setUnread) {
        o.setUnread(0);
      }
    }, function () {});
  }

  var enable = document.getElementById('enable-notifications');
  if (!enable || !('Notification' in window) || Notification.permission !== 'default') {
    return;
  }
  enable.hidden = false;
  enable.addEventListener('click', function () {
    Notification.requestPermission().then(function (p) {
      enable.hidden = true;
      o.toast(p === 'granted' ? 'Browser notifications are on.' : 'Browser notifications stay off.');
    });
  });
})();
