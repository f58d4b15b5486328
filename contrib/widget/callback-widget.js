/*
 * vats-bridge "call me back" widget. Add to any page:
 *
 *   <script src="https://your-site.example/callback-widget.js"
 *           data-endpoint="https://bridge.example.com/callback-requests"
 *           data-title="We will call you back in a minute"></script>
 *
 * The site's origin must be listed in the bridge's CORS_ORIGINS. No dependencies.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = script && script.getAttribute("data-endpoint");
  if (!endpoint) { console.error("callback-widget: data-endpoint is required"); return; }
  var title = script.getAttribute("data-title") || "Call me back";

  var css = ".vb-cb{position:fixed;right:20px;bottom:20px;font:14px/1.4 system-ui,sans-serif;z-index:99999}" +
    ".vb-cb button{background:#1a73e8;color:#fff;border:0;border-radius:22px;padding:10px 18px;cursor:pointer}" +
    ".vb-cb form{display:none;background:#fff;border:1px solid #ddd;border-radius:8px;padding:14px;width:240px;box-shadow:0 4px 16px rgba(0,0,0,.15)}" +
    ".vb-cb.open form{display:block}.vb-cb.open>button{display:none}" +
    ".vb-cb input{display:block;width:100%;box-sizing:border-box;margin:6px 0;padding:7px;border:1px solid #ccc;border-radius:4px}" +
    ".vb-cb .vb-hp{position:absolute;left:-10000px}.vb-cb .vb-msg{margin-top:6px;min-height:1em}";
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);

  var box = document.createElement("div");
  box.className = "vb-cb";
  box.innerHTML =
    '<button type="button"></button>' +
    '<form novalidate><strong class="vb-title"></strong>' +
    '<input name="phone" type="tel" autocomplete="tel" placeholder="+7 (___) ___-__-__" required>' +
    '<input name="name" type="text" autocomplete="name" placeholder="Your name">' +
    '<input name="website" class="vb-hp" tabindex="-1" autocomplete="off" aria-hidden="true">' +
    '<button type="submit">Call me</button><div class="vb-msg" role="status"></div></form>';
  box.querySelector("button").textContent = title;
  box.querySelector(".vb-title").textContent = title;
  document.body.appendChild(box);

  var form = box.querySelector("form");
  var message = box.querySelector(".vb-msg");
  box.querySelector("button").addEventListener("click", function () { box.classList.add("open"); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = {
      phone: form.phone.value,
      name: form.name.value || undefined,
      website: form.website.value,
      page_url: location.href
    };
    message.textContent = "Sending…";
    fetch(endpoint, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (response.status === 202) { message.textContent = "Thank you! We are calling you now."; form.reset(); return; }
          var errors = body.errors && body.errors.phone ? body.errors.phone.join("; ") : body.detail;
          message.textContent = errors || "Something went wrong, please try again later.";
        });
      })
      .catch(function () { message.textContent = "No connection, please try again."; });
  });
})();
