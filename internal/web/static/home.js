// home.js keeps the viewer counts of the live cards on the home page current.
(function () {
  'use strict';

  var POLL_MS = 15000;

  function poll() {
    fetch('/api/v1/streams', { headers: { Accept: 'application/json' }, cache: 'no-store' })
      .then(function (res) {
        return res.ok ? res.json() : [];
      })
      .then(function (streams) {
        var byName = {};
        streams.forEach(function (s) {
          byName[s.channel] = s.viewers;
        });
        document.querySelectorAll('.stream-card[data-channel]').forEach(function (card) {
          var n = byName[card.dataset.channel];
          var el = card.querySelector('[data-viewers]');
          if (el && n !== undefined) {
            el.textContent = n + ' watching';
          }
        });
      })
      .catch(function () {})
      .then(function () {
        setTimeout(poll, POLL_MS);
      });
  }
  setTimeout(poll, POLL_MS);
})();
