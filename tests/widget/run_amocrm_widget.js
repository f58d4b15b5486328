// Loads contrib/amocrm-widget/script.js with stand-ins for amoCRM's page, "clicks" a number and
// prints the request the widget sent (for tests/test_amocrm_widget.py).
const fs = require("fs");
const [script, bridgeUrl, secret, number] = process.argv.slice(2);
let factory;
globalThis.define = (deps, f) => { factory = f; };
globalThis.window = { atob: (s) => Buffer.from(s, "base64").toString("binary"), btoa: (s) => Buffer.from(s, "binary").toString("base64"), crypto: globalThis.crypto };
globalThis.AMOCRM = {
  constant: () => ({ id: 8375357 }),
  data: { current_entity: "contacts", current_card: { id: 406322 } },
  notifications: { show_message: (m) => console.error("notification:", m.text) },
};
let sent;
globalThis.fetch = async (url, init) => { sent = { url, ...init }; return { status: 202, json: async () => ({ id: "x", status: "queued" }) }; };
eval(fs.readFileSync(script, "utf8"));
const Widget = factory(null);
const widget = new Widget();
let onPhone;
widget.get_settings = () => ({ bridge_url: bridgeUrl, secret });
widget.i18n = (k) => ({ widget: { name: "w" }, messages: { queued: "ok", failed: "no" } })[k];
widget.add_action = (type, handler) => { if (type === "phone") onPhone = handler; };
widget.callbacks.init();
onPhone({ value: number });
setTimeout(() => { console.log(JSON.stringify(sent)); }, 200);
