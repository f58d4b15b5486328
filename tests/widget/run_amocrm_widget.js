// Loads contrib/amocrm-widget/script.js with stand-ins for amoCRM's page, "clicks" a number and
// prints what happened (for tests/test_amocrm_widget.py): the request the widget made, the
// bridge's answer and the notification the user saw.
//
// $authorizedAjax is stood in as amoCRM documents it: it takes jQuery $.ajax() options, adds
// X-Auth-Token (a JWT signed with HS256 and the integration's secret key, carrying iss, aud, jti,
// iat, nbf, exp, account_id, user_id) and returns a $.Deferred-like object (done/fail). The
// request really goes to the bridge, so the bridge's own code verifies the token.
//
// node run_amocrm_widget.js SCRIPT BRIDGE_URL CLIENT_SECRET ACCOUNT_URL ACCOUNT_ID USER_ID NUMBER
const crypto = require("crypto");
const fs = require("fs");

const [script, bridgeUrl, clientSecret, accountUrl, accountId, userId, number] = process.argv.slice(2);
const realFetch = globalThis.fetch;
globalThis.fetch = undefined; // the widget must go through $authorizedAjax, as in amoCRM

function oneTimeToken() {
  const now = Math.floor(Date.now() / 1000);
  const b64url = (text) => Buffer.from(text).toString("base64url");
  const head = b64url(JSON.stringify({ typ: "JWT", alg: "HS256" }));
  const body = b64url(JSON.stringify({
    iss: accountUrl,
    aud: new URL(bridgeUrl).origin,
    jti: crypto.randomUUID(),
    iat: now,
    nbf: now,
    exp: now + 60 * 30,
    account_id: Number(accountId),
    user_id: Number(userId),
    client_uuid: crypto.randomUUID(),
    subdomain: new URL(accountUrl).hostname.split(".")[0],
    is_admin: false,
  }));
  const signature = crypto.createHmac("sha256", clientSecret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${signature}`;
}

const record = { request: null, status: null, notification: null };
let settled = Promise.resolve();

function authorizedAjax(options) {
  const headers = { "X-Auth-Token": oneTimeToken(), Origin: accountUrl };
  if (options.contentType) headers["Content-Type"] = options.contentType;
  Object.assign(headers, options.headers || {});
  const method = (options.method || options.type || "GET").toUpperCase();
  record.request = { url: options.url, method, headers, body: options.data };
  const outcome = realFetch(options.url, { method, headers, body: options.data }).then(async (response) => {
    const text = await response.text();
    let json;
    try { json = JSON.parse(text); } catch (e) { json = undefined; }
    record.status = response.status;
    const xhr = { status: response.status, responseText: text, responseJSON: json };
    return { ok: response.ok, data: json, xhr };
  });
  settled = outcome;
  const deferred = {
    done(f) { outcome.then((r) => { if (r.ok) f(r.data, "success", r.xhr); }); return deferred; },
    fail(f) { outcome.then((r) => { if (!r.ok) f(r.xhr, "error", ""); }); return deferred; },
    always(f) { outcome.then((r) => f(r.xhr)); return deferred; },
  };
  return deferred;
}

let factory;
globalThis.define = (deps, f) => { factory = f; };
globalThis.AMOCRM = {
  constant: (name) => ({ user: { id: Number(userId) }, account: { id: Number(accountId) } })[name],
  data: { current_entity: "contacts", current_card: { id: 406322 } },
  notifications: { show_message: (m) => { record.notification = m.text; } },
};
eval(fs.readFileSync(script, "utf8"));
const Widget = factory();
const widget = new Widget();
let onPhone;
widget.$authorizedAjax = authorizedAjax;
widget.get_settings = () => ({ bridge_url: bridgeUrl });
widget.i18n = (k) => ({ widget: { name: "w" }, messages: { queued: "ok", failed: "no" } })[k];
widget.add_action = (type, handler) => { if (type === "phone") onPhone = handler; };
widget.callbacks.init();
onPhone({ value: number });
settled.then(() => setTimeout(() => console.log(JSON.stringify(record)), 0));
