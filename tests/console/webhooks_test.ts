/**
 * The console's Webhooks section in-process: the platform's endpoints, an endpoint's deliveries
 * and each attempt's response, test send, retry, recover, enable/disable, secret rotation and
 * deletion (typed confirmation), all through the API; support reads without buttons, a forged
 * form and a form without its CSRF token are refused.
 */
import assert from "node:assert/strict";
import { type Harness, setup } from "../_harness.ts";
import { ADMIN, createHook, HOOK_URL, receiver } from "../_webhooks.ts";
import { signedIn, textOf } from "./_console.ts";

let nonces = 0;
const nonce = () => `nonce-${++nonces}`;

const endpointOf = async (h: Harness, id: string) =>
  (await h.call("GET", `${ADMIN}/${id}`, { token: h.root })).body.data;

Deno.test("console webhooks: create an endpoint (secret shown once), test send fails, retry succeeds", async () => {
  await using h = await setup();
  const { client, user } = await signedIn(h, "ops");
  const home = await client.get("/console");
  assert.match(home.text, /href="\/console\/webhooks"/);

  const created = await client.post("/console/webhooks", {
    url: HOOK_URL,
    description: "CRM sync",
    event_types: "tenant.created, webhook.test",
    _nonce: nonce(),
  });
  assert.equal(created.status, 201, created.text);
  const secret = /<p class="secret">(whsec_[^<]+)<\/p>/.exec(created.text)?.[1];
  assert.ok(secret, "the secret is on the answer");
  const id = /<dd>(whk_[0-9A-Za-z]+)<\/dd>/.exec(created.text)![1];
  assert.deepEqual((await endpointOf(h, id)).event_types, ["tenant.created", "webhook.test"]);
  const trail = await h.auditFor(id);
  assert.equal(trail[0].actor_id, user.id);
  const page = await client.get(`/console/webhooks/${id}`);
  assert.doesNotMatch(page.text, /whsec_/, "never shown again");
  const list = await client.get("/console/webhooks");
  assert.match(list.text, new RegExp(`href="/console/webhooks/${id}">${HOOK_URL}</a>`));
  assert.match(textOf(list.text), /CRM sync tenant\.created, webhook\.test enabled/);

  // The receiver fails first, then accepts.
  let failing = true;
  receiver(
    h,
    () =>
      failing
        ? new Response("receiver down", { status: 500 })
        : new Response(null, { status: 204 }),
  );
  const sent = await client.post(`/console/webhooks/${id}/test`, { _nonce: nonce() });
  assert.equal(sent.status, 303, sent.text);
  assert.equal(sent.headers.get("Location"), `/console/webhooks/${id}?notice=test-failed`);
  const after = await client.get(sent.headers.get("Location")!);
  assert.match(textOf(after.text), /first attempt failed/);
  const message = /href="\/console\/webhooks\/whk_[^/]+\/deliveries\/(msg_[0-9A-Za-z]+)"/.exec(
    after.text,
  )![1];
  assert.match(textOf(after.text), new RegExp(`${message} webhook\\.test pending 1`));

  const delivery = await client.get(`/console/webhooks/${id}/deliveries/${message}`);
  assert.equal(delivery.status, 200);
  assert.match(textOf(delivery.text), /manual failed 500 receiver down/);

  failing = false;
  const retried = await client.post(`/console/webhooks/${id}/deliveries/${message}/retry`, {
    _nonce: nonce(),
  });
  assert.equal(retried.status, 303, retried.text);
  assert.match(retried.headers.get("Location")!, /notice=retry-delivered$/);
  const done = await client.get(retried.headers.get("Location")!);
  assert.match(textOf(done.text), /Retried: delivered\./);
  assert.match(textOf(done.text), /manual succeeded 204/);
  const filtered = await client.get(`/console/webhooks/${id}?status=succeeded`);
  assert.match(textOf(filtered.text), new RegExp(`${message} webhook\\.test succeeded`));
  const none = await client.get(`/console/webhooks/${id}?status=failed`);
  assert.match(textOf(none.text), /No delivery yet\./);
});

Deno.test("console webhooks: recover, disable and enable, rotate, delete with the URL typed", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "ops");
  const hook = await createHook(h, ADMIN);
  const path = `/console/webhooks/${hook.id}`;
  await client.get(path);

  const recover = await client.post(`${path}/recover`, {
    since: "2026-01-01T00:00",
    _nonce: nonce(),
  });
  assert.equal(recover.status, 303, recover.text);
  assert.match(recover.headers.get("Location")!, /notice=recovering/);
  const bad = await client.post(`${path}/recover`, { since: "yesterday", _nonce: nonce() });
  assert.equal(bad.status, 400);
  assert.match(textOf(bad.text), /since:/);

  const disabled = await client.post(`${path}/disable`, { _nonce: nonce() });
  assert.equal(disabled.status, 303);
  assert.equal((await endpointOf(h, hook.id)).enabled, false);
  const refused = await client.post(`${path}/test`, { _nonce: nonce() });
  assert.equal(refused.status, 409, "a disabled endpoint is not tested");
  assert.match(refused.text, /role="alert"/);
  assert.equal((await client.post(`${path}/enable`, { _nonce: nonce() })).status, 303);
  assert.equal((await endpointOf(h, hook.id)).enabled, true);

  const rotated = await client.post(`${path}/rotate-secret`, { _nonce: nonce() });
  assert.equal(rotated.status, 200);
  const secret = /<p class="secret">(whsec_[^<]+)<\/p>/.exec(rotated.text)?.[1];
  assert.ok(secret && secret !== hook.secret);

  const wrong = await client.post(`${path}/delete`, { confirm: "nope", _nonce: nonce() });
  assert.equal(wrong.status, 422);
  assert.equal((await endpointOf(h, hook.id)).deleted_at, null);
  const gone = await client.post(`${path}/delete`, { confirm: HOOK_URL, _nonce: nonce() });
  assert.equal(gone.status, 303);
  assert.equal(gone.headers.get("Location"), "/console/webhooks?notice=deleted");
  assert.equal((await h.call("GET", `${ADMIN}/${hook.id}`, { token: h.root })).status, 404);
  const missing = await client.get(path);
  assert.equal(missing.status, 404);
});

Deno.test("console webhooks: support reads without buttons; forged forms 403; no CSRF token 403", async () => {
  await using h = await setup();
  receiver(h, () => new Response("no", { status: 503 }));
  const hook = await createHook(h, ADMIN);
  const test = await h.call("POST", `${ADMIN}/${hook.id}/test`, { token: h.root });
  const message = test.body.data.message.id;

  const { client: support } = await signedIn(h, "support");
  const list = await support.get("/console/webhooks");
  assert.equal(list.status, 200);
  assert.doesNotMatch(list.text, /Create endpoint/);
  const page = await support.get(`/console/webhooks/${hook.id}`);
  assert.equal(page.status, 200);
  assert.match(page.text, new RegExp(message));
  assert.doesNotMatch(page.text, /<button[^>]*>(Retry|Send a test event|Disable|Delete)/);
  const delivery = await support.get(`/console/webhooks/${hook.id}/deliveries/${message}`);
  assert.match(textOf(delivery.text), /manual failed 503 no/);
  assert.doesNotMatch(delivery.text, /Retry now/);
  const forged = await support.post(`/console/webhooks/${hook.id}/deliveries/${message}/retry`, {
    _nonce: nonce(),
  });
  assert.equal(forged.status, 403);
  assert.equal(
    (await support.post(`/console/webhooks/${hook.id}/test`, { _nonce: nonce() })).status,
    403,
  );

  const { client: ops } = await signedIn(h, "ops");
  const noToken = await ops.post(`/console/webhooks/${hook.id}/test`, { _nonce: nonce() }, {
    csrf: false,
  });
  assert.equal(noToken.status, 403);
  const attempts = await h.call("GET", `${ADMIN}/${hook.id}/deliveries/${message}/attempts`, {
    token: h.root,
  });
  assert.equal(attempts.body.data.length, 1, "nothing was sent by the refused forms");

  // A role without webhooks:read: no section in the nav, the API's 403 on the page.
  const { client: finance } = await signedIn(h, "finance");
  assert.doesNotMatch((await finance.get("/console")).text, /href="\/console\/webhooks"/);
  assert.equal((await finance.get("/console/webhooks")).status, 403);
});
