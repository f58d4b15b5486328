/*
 * vats-bridge click-to-call for amoCRM / Kommo.
 *
 * A click on a phone number ("Call" in the number's menu) posts a Standard-Webhooks-signed
 * {"to": number, "user": <amoCRM user id>, "crm": {...}} to POST <bridge_url>/webhooks/click-to-call.
 * The signature is made in the browser with WebCrypto from the widget's secret, so give the
 * widget a secret of its own (WEBHOOK_SECRET accepts several): it can be revoked alone. The
 * amoCRM account's origin must be in CORS_ORIGINS. [users] in INTEGRATION_CONFIG maps amoCRM
 * user ids to the contract numbers that ring first.
 */
define(["jquery"], function ($) {
  "use strict";

  function base64(bytes) {
    var text = "";
    new Uint8Array(bytes).forEach(function (b) { text += String.fromCharCode(b); });
    return window.btoa(text);
  }

  function sign(secret, id, timestamp, body) {
    var raw = window.atob(secret.replace(/^whsec_/, ""));
    var key = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { key[i] = raw.charCodeAt(i); }
    return window.crypto.subtle
      .importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      .then(function (k) {
        return window.crypto.subtle.sign("HMAC", k, new TextEncoder().encode(id + "." + timestamp + "." + body));
      })
      .then(function (signature) { return "v1," + base64(signature); });
  }

  return function () {
    var self = this;

    function call(number) {
      var settings = self.get_settings();
      var card = (AMOCRM.data && AMOCRM.data.current_card) || {};
      var body = JSON.stringify({
        to: String(number),
        user: String(AMOCRM.constant("user").id),
        crm: { amocrm: { entity: AMOCRM.data.current_entity || null, id: card.id || null } }
      });
      var id = "msg_amo_" + Date.now().toString(36) + Math.random().toString(36).slice(2);
      var timestamp = String(Math.floor(Date.now() / 1000));
      return sign(settings.secret, id, timestamp, body).then(function (signature) {
        return fetch(settings.bridge_url.replace(/\/$/, "") + "/webhooks/click-to-call", {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            "webhook-id": id,
            "webhook-timestamp": timestamp,
            "webhook-signature": signature
          },
          body: body
        });
      }).then(function (response) {
        return response.json().then(function (answer) {
          var ok = response.status === 202;
          AMOCRM.notifications.show_message({
            header: self.i18n("widget").name,
            text: ok ? self.i18n("messages").queued : self.i18n("messages").failed + ": " + (answer.detail || response.status)
          });
        });
      });
    }

    this.callbacks = {
      render: function () { return true; },
      init: function () {
        self.add_action("phone", function (params) { call(params.value); });
        return true;
      },
      bind_actions: function () { return true; },
      settings: function () { return true; },
      onSave: function () { return true; },
      destroy: function () {}
    };
    return this;
  };
});
