// Opens and closes the row of a stream's clients on /stat when its name is clicked, as
// nginx-rtmp's stat.xsl does with an inline onclick (which the Content-Security-Policy
// of /stat refuses). stat.xsl loads this file from /stat.js.
'use strict';
document.addEventListener('click', function (e) {
  var a = e.target && e.target.closest ? e.target.closest('a[data-clients]') : null;
  if (!a) {
    return;
  }
  e.preventDefault();
  var row = document.getElementById(a.getAttribute('data-clients'));
  if (row) {
    row.style.display = row.style.display === 'none' ? '' : 'none';
  }
});
