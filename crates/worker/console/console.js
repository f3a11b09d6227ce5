// keygate key console: a page over the admin API (docs/admin-api.md), served by the worker at
// <ADMIN_PREFIX>/console. No framework, no build step.
//
// Rules this file keeps (SECURITY.md, "Key console"):
// - Every value from the API reaches the page as text (textContent, text nodes, attribute values
//   set with setAttribute on inert attributes): never innerHTML or any HTML parser.
// - The admin token lives in this tab's sessionStorage only; never in a URL, cookie or
//   localStorage. Sign-out forgets it.
// - A plaintext key (create, roll) is written to the DOM only in the one-time view, and removed
//   from it when that view is left.

const API = location.pathname.replace(/\/console$/, "");
const TOKEN_ITEM = "keygate.console.token";
const PAGE_SIZE = 20;

const $ = (id) => document.getElementById(id);

// ---- rendering helpers: text only --------------------------------------------------------

// An element with attributes and children; strings become text nodes, null/undefined nothing.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function clear(node) {
  node.replaceChildren();
}

function show(section) {
  for (const id of ["sign-in-view", "keys-view", "create-view", "secret-view", "key-view"]) {
    $(id).hidden = id !== section;
  }
  // Leaving the one-time view forgets the key it showed.
  if (section !== "secret-view") forgetSecret();
}

const time = (value) => (value ? new Date(value).toISOString().replace("T", " ").replace(/:\d\d\.\d+Z$/, " UTC") : "—");

// The status a request would meet now: the stored one, then the validity window.
function effectiveStatus(record, now = Date.now()) {
  if (record.status === "revoked") return "revoked";
  if (record.status === "inactive") return "disabled";
  if (record.valid_to && Date.parse(record.valid_to) <= now) return "expired";
  if (record.valid_from && Date.parse(record.valid_from) > now) return "not yet valid";
  return "active";
}

const badge = (text) => el("span", { class: "badge " + text.replace(/ /g, "-") }, text);

function grantText(record) {
  const parts = [];
  if (record.role) parts.push(record.role);
  if (record.scopes && record.scopes.length) parts.push(record.scopes.join(", "));
  return parts.join(" + ") || "—";
}

function limitsText(record) {
  if (Array.isArray(record.limits)) {
    return record.limits.length ? record.limits.map((l) => `${l.name}: ${l.limit}/${l.window_seconds}s`).join(", ") : "no limits";
  }
  if (record.tier) return "tier " + record.tier;
  return catalogue && catalogue.default_tier ? `default (${catalogue.default_tier})` : "—";
}

// A list field (networks, countries) as text: "any" when empty or absent.
const anyList = (list) => (Array.isArray(list) && list.length ? list.join(", ") : "any");

// A list typed in a textarea: one entry per line or comma-separated, blanks dropped.
const splitList = (text) => text.split(/[\n,]/).map((entry) => entry.trim()).filter(Boolean);

// A `leak_reported` audit entry as a sentence (text only; the source URL is never a link).
function leakText(entry) {
  const by = entry.reporter ? ` by ${entry.reporter}` : "";
  const at = entry.source ? ` at ${entry.source}` : "";
  return `reported leaked${by}${at}`;
}

// ---- the admin API ----------------------------------------------------------------------

let token = sessionStorage.getItem(TOKEN_ITEM);
let catalogue = null;

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    const fields = error.details && error.details.fields ? Object.entries(error.details.fields).map(([f, p]) => `${f}: ${p}`) : [];
    super([`${status} ${error.code || "ERROR"}: ${error.message || "request failed"}`, ...fields].join("\n"));
    this.status = status;
    this.code = error.code;
  }
}

async function api(method, path, body) {
  const headers = { authorization: "Bearer " + token };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) signOut("The admin token was refused (401 UNAUTHORIZED). Sign in again.");
    throw new ApiError(response.status, data);
  }
  return data;
}

// A form value the page refuses before asking the API.
class FormError extends Error {}

// Runs `action`, showing its failure in `errorNode` (text).
async function attempt(errorNode, action) {
  errorNode.textContent = "";
  try {
    await action();
  } catch (error) {
    const known = error instanceof ApiError || error instanceof FormError;
    errorNode.textContent = known ? error.message : "Could not reach the admin API: " + error.message;
  }
}

// ---- sign-in ----------------------------------------------------------------------------

async function signIn(candidate) {
  token = candidate;
  try {
    catalogue = await api("GET", "/catalogue");
  } catch (error) {
    token = null;
    throw error;
  }
  sessionStorage.setItem(TOKEN_ITEM, token);
  $("token").value = "";
  $("session").hidden = false;
  const envs = catalogue.envs.join(", ");
  $("format-note").textContent = `new keys: ${catalogue.key_prefix}_… · environments: ${envs}`;
  show("keys-view");
  await loadKeys();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_ITEM);
  token = null;
  catalogue = null;
  current = null;
  for (const id of ["keys-body", "create-fields", "edit-fields", "key-facts", "audit-body", "usage"]) clear($(id));
  $("session").hidden = true;
  show("sign-in-view");
  $("sign-in-error").textContent = message;
}

// ---- key list ---------------------------------------------------------------------------

let cursors = [null]; // the cursor of each page seen, for "first page"
let nextCursor = null;

async function loadKeys(cursor = null) {
  const project = $("project").value.trim();
  const params = new URLSearchParams({ project, limit: String(PAGE_SIZE) });
  const status = $("status-filter").value;
  if (status) params.set("status", status);
  if (cursor) params.set("cursor", cursor);
  const page = await api("GET", "/keys?" + params);
  const body = $("keys-body");
  clear(body);
  for (const record of page.items) {
    const row = el(
      "tr",
      { class: "key-row", "data-key-id": record.id },
      el("td", { class: "name" }, record.name),
      el("td", {}, el("code", {}, record.hint)),
      el("td", {}, record.env),
      el("td", {}, grantText(record)),
      el("td", {}, record.status),
      el("td", { class: "effective" }, badge(effectiveStatus(record))),
      el("td", {}, time(record.valid_from)),
      el("td", {}, record.valid_to ? time(record.valid_to) : "lifetime"),
      el("td", {}, limitsText(record)),
      el("td", {}, time(record.last_used_at)),
    );
    row.addEventListener("click", () => attempt($("list-error"), () => openKey(record.id)));
    body.append(row);
  }
  $("keys-empty").hidden = page.items.length > 0;
  nextCursor = page.cursor;
  $("page-next").disabled = !nextCursor;
  $("page-first").disabled = cursors.length <= 1;
  $("page-note").textContent = `page ${cursors.length}`;
}

// ---- form fields shared by create and edit -----------------------------------------------

function field(label, input) {
  return el("label", {}, label, input);
}

function options(values, selected) {
  return values.map(([value, text]) => el("option", { value, selected: value === selected }, text));
}

const localInput = (iso) => (iso ? new Date(Date.parse(iso) - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16) : "");
const fromLocalInput = (value) => (value ? new Date(value).toISOString() : null);

// The fields of a key's grant, validity, origins and limits; `record` (edit) prefills them.
function keyFields(prefix, record) {
  const roles = Object.keys(catalogue.roles);
  const role = el("select", { id: prefix + "-role" }, options([["", "(no role)"], ...roles.map((r) => [r, r])], record ? record.role || "" : roles[0] || ""));
  const granted = new Set(record ? record.scopes : []);
  const scopes = el(
    "fieldset",
    { id: prefix + "-scopes" },
    el("legend", {}, "Scopes (added to the role's)"),
    catalogue.scopes.map((scope) => el("label", {}, el("input", { type: "checkbox", value: scope, checked: granted.has(scope) }), scope)),
  );
  const expiry = record && record.valid_to ? "date" : "lifetime";
  const radio = (value, text) => el("label", {}, el("input", { type: "radio", name: prefix + "-expiry", value, checked: value === expiry }), text);
  const validity = el(
    "fieldset",
    {},
    el("legend", {}, "Expiry"),
    radio("lifetime", "Lifetime (no expiry)"),
    radio("date", "Until"),
    el("input", { type: "datetime-local", id: prefix + "-valid-to", value: localInput(record && record.valid_to) }),
    radio("days", "For"),
    el("input", { type: "number", id: prefix + "-days", min: 1, max: 3650, value: 90, class: "short" }),
    " days",
  );
  const origins = el("textarea", { id: prefix + "-origins", placeholder: "https://app.example.com (one per line; empty: any)" });
  origins.value = record && record.allowed_origins ? record.allowed_origins.join("\n") : "";
  const networks = el("textarea", { id: prefix + "-networks", placeholder: "203.0.113.0/24, 2001:db8::/32 (one per line or comma-separated; empty: any)" });
  networks.value = record && record.allowed_networks ? record.allowed_networks.join("\n") : "";
  const countries = el("input", { id: prefix + "-countries", placeholder: "DE, AT (empty: any)", spellcheck: "false" });
  countries.value = record && record.allowed_countries ? record.allowed_countries.join(", ") : "";
  const tierChoice = record ? (Array.isArray(record.limits) ? (record.limits.length ? "custom" : "none") : record.tier ? "tier:" + record.tier : "default") : "default";
  const tier = el(
    "select",
    { id: prefix + "-tier" },
    options(
      [
        ["default", catalogue.default_tier ? `gateway default (${catalogue.default_tier})` : "gateway default (none)"],
        ...Object.keys(catalogue.tiers).map((t) => ["tier:" + t, "tier " + t + ": " + catalogue.tiers[t].map((l) => `${l.limit}/${l.window_seconds}s`).join(", ")]),
        ["none", "no limits"],
        ["custom", "custom limits"],
      ],
      tierChoice,
    ),
  );
  const limits = el("textarea", { id: prefix + "-limits", placeholder: "name limit window_seconds, one per line, e.g. minute 60 60" });
  limits.value = record && Array.isArray(record.limits) ? record.limits.map((l) => `${l.name} ${l.limit} ${l.window_seconds}`).join("\n") : "";
  return [
    field("Role", role),
    scopes,
    validity,
    field("Allowed origins", origins),
    field("Allowed networks (CIDRs or addresses)", networks),
    field("Allowed countries (two-letter codes)", countries),
    field("Tier / limits", tier),
    field("Custom limits", limits),
  ];
}

// The values of keyFields, as admin API fields.
function readKeyFields(prefix) {
  const value = (id) => $(prefix + "-" + id).value;
  const scopes = [...$(prefix + "-scopes").querySelectorAll("input:checked")].map((box) => box.value);
  const expiry = document.querySelector(`input[name="${prefix}-expiry"]:checked`).value;
  let valid_to = null;
  if (expiry === "date") {
    if (!value("valid-to")) throw new FormError("Expiry: pick the date and time the key ends (or choose lifetime).");
    valid_to = fromLocalInput(value("valid-to"));
  }
  if (expiry === "days") valid_to = new Date(Date.now() + Number(value("days")) * 86400000).toISOString();
  const origins = value("origins").split("\n").map((line) => line.trim()).filter(Boolean);
  const choice = value("tier");
  let tier = null;
  let limits = null;
  if (choice.startsWith("tier:")) tier = choice.slice(5);
  if (choice === "none") limits = [];
  if (choice === "custom") {
    limits = value("limits").split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
      const [name, limit, window_seconds] = line.split(/\s+/);
      return { name, limit: Number(limit), window_seconds: Number(window_seconds) };
    });
  }
  const allowed_networks = splitList(value("networks"));
  const allowed_countries = splitList(value("countries"));
  return { role: value("role") || null, scopes, valid_to, allowed_origins: origins.length ? origins : null, allowed_networks, allowed_countries, tier, limits };
}

// ---- create -----------------------------------------------------------------------------

function openCreate() {
  const project = $("project").value.trim();
  $("create-project").textContent = project;
  const fields = $("create-fields");
  clear(fields);
  fields.append(
    field("Name", el("input", { id: "create-name", required: true, maxlength: 100 })),
    field("Environment", el("select", { id: "create-env" }, options(catalogue.envs.map((e) => [e, e]), catalogue.envs[0]))),
    ...keyFields("create", null),
    field("Valid from (empty: now)", el("input", { type: "datetime-local", id: "create-valid-from" })),
    field("Meta", el("textarea", { id: "create-meta", placeholder: "key=value, one per line" })),
    el("label", { class: "inline" }, el("input", { type: "checkbox", id: "create-disabled" }), "Create disabled"),
  );
  $("create-error").textContent = "";
  show("create-view");
}

async function submitCreate() {
  const meta = {};
  for (const line of $("create-meta").value.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    meta[at < 0 ? line : line.slice(0, at).trim()] = at < 0 ? "" : line.slice(at + 1).trim();
  }
  const body = {
    project: $("project").value.trim(),
    name: $("create-name").value,
    env: $("create-env").value,
    ...readKeyFields("create"),
    valid_from: fromLocalInput($("create-valid-from").value),
    meta,
    status: $("create-disabled").checked ? "inactive" : "active",
  };
  for (const name of ["role", "valid_to", "allowed_origins", "tier", "limits", "valid_from"]) if (body[name] === null) delete body[name];
  for (const name of ["allowed_networks", "allowed_countries"]) if (!body[name].length) delete body[name];
  const created = await api("POST", "/keys", body);
  showSecret(created.key, `Key “${created.record.name}” (${created.record.hint}) was created.`, created.record.id);
}

// ---- the one-time view --------------------------------------------------------------------

let secretFor = null; // the key id the one-time view belongs to

function showSecret(plaintext, note, id) {
  secretFor = id;
  $("secret-key").textContent = plaintext;
  $("secret-note").textContent = note;
  $("secret-copied").textContent = "";
  show("secret-view");
}

function forgetSecret() {
  $("secret-key").textContent = "";
  $("secret-note").textContent = "";
  $("secret-copied").textContent = "";
}

async function copySecret() {
  try {
    await navigator.clipboard.writeText($("secret-key").textContent);
    $("secret-copied").textContent = "Copied.";
  } catch {
    $("secret-copied").textContent = "Copy failed: select the key and copy it by hand.";
  }
}

// ---- one key ------------------------------------------------------------------------------

let current = null; // the record shown in the key view

async function openKey(id) {
  const record = await api("GET", "/keys/" + encodeURIComponent(id));
  renderKey(record);
  show("key-view");
  $("key-error").textContent = "";
  await Promise.all([loadAudit(id), loadUsage(id)]);
}

function renderKey(record) {
  current = record;
  $("key-name").textContent = record.name;
  const effective = effectiveStatus(record);
  $("key-badge").textContent = effective;
  $("key-badge").className = "badge " + effective.replace(/ /g, "-");
  const facts = $("key-facts");
  clear(facts);
  const rows = [
    ["Id", record.id],
    ["Hint", record.hint],
    ["Project", record.project],
    ["Environment", record.env],
    ["Role / scopes", grantText(record)],
    ["Status (stored)", record.status],
    ["Effective", effective],
    ["Valid from", time(record.valid_from)],
    ["Valid to", record.valid_to ? time(record.valid_to) : "lifetime"],
    ["Allowed origins", record.allowed_origins ? record.allowed_origins.join(", ") : "any"],
    ["Allowed networks", anyList(record.allowed_networks)],
    ["Allowed countries", anyList(record.allowed_countries)],
    ["Tier / limits", limitsText(record)],
    ["Meta", Object.entries(record.meta || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"],
    ["Rolled from", record.rolled_from || "—"],
    ["Created", time(record.created_at)],
    ["Updated", time(record.updated_at) + ` (revision ${record.revision})`],
  ];
  for (const [name, value] of rows) facts.append(el("dt", {}, name), el("dd", {}, value));
  const revoked = record.status === "revoked";
  $("key-toggle").textContent = record.status === "active" ? "Disable" : "Enable";
  for (const id of ["key-toggle", "key-edit", "key-roll", "key-revoke"]) $(id).disabled = revoked;
  $("edit-form").hidden = true;
  $("roll-form").hidden = true;
}

async function loadAudit(id) {
  const audit = await api("GET", "/keys/" + encodeURIComponent(id) + "/audit");
  const body = $("audit-body");
  clear(body);
  for (const entry of audit.items) {
    const changes = Object.entries(entry.changes || {}).map(
      ([name, change]) => `${name}: ${JSON.stringify(change.from)} → ${JSON.stringify(change.to)}`,
    );
    if (entry.action === "leak_reported") changes.unshift(leakText(entry));
    body.append(el("tr", {}, el("td", {}, time(entry.at)), el("td", {}, entry.action), el("td", {}, entry.revision), el("td", {}, changes.join("; ") || "—")));
  }
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}

// Allowed (blue) and refused (red) requests per UTC day, oldest left, drawn as inline SVG.
async function loadUsage(id) {
  const usage = await api("GET", "/keys/" + encodeURIComponent(id) + "/usage");
  const box = $("usage");
  clear(box);
  const days = [...usage.days].reverse();
  const total = days.reduce((sum, d) => sum + d.allowed + d.refused, 0);
  box.append(el("p", { class: "muted", id: "usage-summary" }, `${total} requests on ${days.length} day(s); last used ${time(usage.last_used_at)}`));
  if (!days.length) return;
  const width = 720;
  const height = 160;
  const bottom = 130;
  const slot = Math.min(60, (width - 20) / days.length);
  const peak = Math.max(1, ...days.map((d) => d.allowed + d.refused));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "requests per day", id: "usage-chart" });
  days.forEach((day, i) => {
    const x = 10 + i * slot;
    const allowed = (day.allowed / peak) * (bottom - 10);
    const refused = (day.refused / peak) * (bottom - 10);
    const label = `${day.date}: ${day.allowed} allowed, ${day.refused} refused`;
    chart.append(
      svg("rect", { class: "allowed", x, y: bottom - allowed, width: slot * 0.7, height: allowed }, svg("title", {}, label)),
      svg("rect", { class: "refused", x, y: bottom - allowed - refused, width: slot * 0.7, height: refused }, svg("title", {}, label)),
      svg("text", { x, y: bottom + 14 }, day.date.slice(5)),
      svg("text", { x, y: bottom - allowed - refused - 3 }, String(day.allowed + day.refused)),
    );
  });
  box.append(chart);
}

function openEdit() {
  const fields = $("edit-fields");
  clear(fields);
  const name = el("input", { id: "edit-name", required: true, maxlength: 100 });
  name.value = current.name;
  fields.append(field("Name", name), ...keyFields("edit", current));
  $("roll-form").hidden = true;
  $("edit-form").hidden = false;
}

// The same list, entry for entry (the order kept, as the API stores it).
const sameList = (a, b) => a.length === b.length && a.every((entry, i) => entry === b[i]);

async function submitEdit() {
  const change = { name: $("edit-name").value, ...readKeyFields("edit") };
  // The network and country lists are sent only when the user changed them: an absent field
  // keeps the stored list, so an unchanged edit never clears or rewrites it.
  for (const name of ["allowed_networks", "allowed_countries"]) {
    if (sameList(change[name], current[name] || [])) delete change[name];
  }
  renderKey(await api("PATCH", "/keys/" + encodeURIComponent(current.id), change));
  await loadAudit(current.id);
}

async function toggle() {
  const status = current.status === "active" ? "inactive" : "active";
  renderKey(await api("PATCH", "/keys/" + encodeURIComponent(current.id), { status }));
  await loadAudit(current.id);
}

function askRevoke() {
  $("revoke-name").textContent = current.name;
  $("revoke-hint").textContent = current.hint;
  $("revoke-dialog").showModal();
}

async function revoke() {
  $("revoke-dialog").close();
  renderKey(await api("DELETE", "/keys/" + encodeURIComponent(current.id)));
  await loadAudit(current.id);
}

async function submitRoll() {
  const grace_seconds = Number($("roll-grace").value);
  // With "in use for": a grace that follows use, the grace period being its bound.
  const afterUse = $("roll-after-use").value;
  const body = afterUse === "" ? { grace_seconds } : { grace: { after_new_used_seconds: Number(afterUse), max_seconds: grace_seconds } };
  const rolled = await api("POST", "/keys/" + encodeURIComponent(current.id) + "/roll", body);
  const end = rolled.previous.valid_to ? time(rolled.previous.valid_to) : "—";
  const earlier = afterUse === "" ? "" : ` at the latest, earlier once the new key has been in use for ${Number(afterUse)} s`;
  showSecret(rolled.key, `Key “${rolled.record.name}” was rolled: the new key is ${rolled.record.hint}; the old key ${rolled.previous.hint} now ends ${end}${earlier}.`, rolled.record.id);
}

// ---- wiring -------------------------------------------------------------------------------

function onSubmit(formId, errorId, action) {
  $(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    attempt($(errorId), action);
  });
}

function onClick(buttonId, errorId, action) {
  $(buttonId).addEventListener("click", () => attempt($(errorId), action));
}

onSubmit("sign-in-form", "sign-in-error", () => signIn($("token").value));
$("sign-out").addEventListener("click", () => signOut());
onSubmit("list-form", "list-error", () => {
  cursors = [null];
  return loadKeys();
});
onClick("page-next", "list-error", () => {
  cursors.push(nextCursor);
  return loadKeys(nextCursor);
});
onClick("page-first", "list-error", () => {
  cursors = [null];
  return loadKeys();
});
$("new-key").addEventListener("click", openCreate);
$("create-cancel").addEventListener("click", () => show("keys-view"));
onSubmit("create-form", "create-error", submitCreate);
onClick("secret-copy", "key-error", copySecret);
onClick("secret-done", "list-error", async () => {
  const id = secretFor;
  secretFor = null;
  show("keys-view");
  await loadKeys();
  if (id) await openKey(id);
});
onClick("key-back", "list-error", async () => {
  show("keys-view");
  await loadKeys(cursors[cursors.length - 1]);
});
onClick("key-toggle", "key-error", toggle);
$("key-edit").addEventListener("click", openEdit);
$("edit-cancel").addEventListener("click", () => ($("edit-form").hidden = true));
onSubmit("edit-form", "key-error", submitEdit);
$("key-roll").addEventListener("click", () => {
  $("edit-form").hidden = true;
  $("roll-after-use").value = "";
  $("roll-form").hidden = false;
});
$("roll-cancel").addEventListener("click", () => ($("roll-form").hidden = true));
onSubmit("roll-form", "key-error", submitRoll);
$("key-revoke").addEventListener("click", askRevoke);
$("revoke-cancel").addEventListener("click", () => $("revoke-dialog").close());
onSubmit("revoke-form", "key-error", revoke);
// Leaving the tab's page (reload, navigation) forgets a key still on screen.
addEventListener("pagehide", forgetSecret);

show("sign-in-view");
if (token) attempt($("sign-in-error"), () => signIn(token));
