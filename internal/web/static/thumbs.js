// thumbs.js shows the live thumbnails of stream cards (/thumb/{channel}.jpg, made every
// ~10 s by the server), keeps them fresh, and plays the preview strip
// (/thumb/{channel}/preview.jpg: the last few thumbnails side by side) while a card is
// hovered or focused. A card without a thumbnail (no ffmpeg, audio only, just started)
// keeps its placeholder.
(function () {
  'use strict';

  var REFRESH_MS = 10000;
  var STEP_MS = 600;

  function bust(url) {
    return url.split('?')[0] + '?t=' + Math.floor(Date.now() / REFRESH_MS);
  }

  function watch(img) {
    img.addEventListener('load', function () {
      img.classList.add('is-loaded');
    });
    img.addEventListener('error', function () {
      img.classList.remove('is-loaded');
    });
    if (img.complete && img.naturalWidth > 0) {
      img.classList.add('is-loaded');
    }
  }

  function preview(card) {
    var img = card.querySelector('img[data-thumb]');
    var box = card.querySelector('[data-preview]');
    if (!img || !box) {
      return;
    }
    var timer = null;
    var token = 0;

    function stop() {
      token++;
      if (timer) {
        clearInterval(timer);
        timer = null;
      }
      box.classList.remove('is-playing');
    }

    function start() {
      stop();
      var mine = token;
      var strip = new Image();
      strip.addEventListener('load', function () {
        if (mine !== token || !img.naturalWidth) {
          return;
        }
        var frames = Math.max(1, Math.round(strip.naturalWidth / img.naturalWidth));
        if (frames < 2) {
          return; // nothing to play yet
        }
        var i = 0;
        box.style.backgroundImage = 'url("' + strip.src + '")';
        box.style.backgroundSize = frames * 100 + '% 100%';
        box.dataset.frames = String(frames);
        function show() {
          box.style.backgroundPosition = (i / (frames - 1)) * 100 + '% 0';
          box.dataset.frame = String(i);
          i = (i + 1) % frames;
        }
        show();
        box.classList.add('is-playing');
        timer = setInterval(show, STEP_MS);
      });
      strip.src = bust(box.dataset.preview);
    }

    if (window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches) {
      return; // the still thumbnail only
    }
    card.addEventListener('mouseenter', start);
    card.addEventListener('mouseleave', stop);
    card.addEventListener('focusin', start);
    card.addEventListener('focusout', stop);
  }

  var imgs = document.querySelectorAll('.stream-card img[data-thumb]');
  if (!imgs.length) {
    return;
  }
  imgs.forEach(watch);
  document.querySelectorAll('.stream-card').forEach(preview);
  setInterval(function () {
    if (document.hidden) {
      return;
    }
    imgs.forEach(function (img) {
      img.src = bust(img.src);
    });
  }, REFRESH_MS);
})();
