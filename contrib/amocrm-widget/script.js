/*
 * vats-bridge click-to-call for amoCRM / Kommo.
 *
 * A click on a phone number ("Call" in the number's menu) posts {"to": number, "crm": {card}} to
 * POST <bridge_url>/widget/amocrm/click-to-call with amoCRM's $authorizedAjax, which adds
 * X-Auth-Token: a one-time token amoCRM signs with the integration's secret key. The bridge
 * checks it (AMOCRM_CLIENT_SECRET) and rings the signed-in user's own number from [users]; the
 * widget holds no secret. The amoCRM account's origin must be in CORS_ORIGINS.
 */
define([], function () {
  "use strict";

  function problemDetail(xhr) {
    var answer = xhr && xhr.responseJSON;
    if (!answer && xhr && xhr.responseText) {
      try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = null; }
    }
    return (answer && answer.detail) || (xhr && xhr.status) || "no answer";
  }

  return function () {
    var self = this;

    function notify(text) {
      AMOCRM.notifications.show_message({ header: self.i18n("widget").name, text: text });
    }

    function call(number) {
      var settings = self.get_settings();
      var card = (AMOCRM.data && AMOCRM.data.current_card) || {};
      return self.$authorizedAjax({
        url: String(settings.bridge_url).replace(/\/+$/, "") + "/widget/amocrm/click-to-call",
        method: "POST",
        contentType: "application/json",
        dataType: "json",
        data: JSON.stringify({
          to: String(number),
          crm: { entity: (AMOCRM.data && AMOCRM.data.current_entity) || null, id: card.id || null }
        })
      }).done(function () {
        notify(self.i18n("messages").queued);
      }).fail(function (xhr) {
        notify(self.i18n("messages").failed + ": " + problemDetail(xhr));
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
