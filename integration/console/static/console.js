// New calls appear without a reload: the first page's rows are fetched again every 15 seconds.
(function () {
  "use strict";
  var rows = document.getElementById("call-rows");
  if (!rows || !rows.dataset.refresh) return;
  setInterval(function () {
    if (document.hidden) return;
    fetch(rows.dataset.refresh, { credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected) { window.location.reload(); return null; }  // the session ended
        return response.ok ? response.text() : null;
      })
      .then(function (html) { if (html !== null) rows.innerHTML = html; })
      .catch(function () {});
  }, 15000);
})();
