/**
 * A local fake of the Stripe API, for tests: `Deno.serve` on 127.0.0.1 (a free port) answering
 * the endpoints Steward calls with Stripe's object shapes (openapi/fixtures3.json of
 * stripe/openapi, cut to the fields Steward reads, with their types), form-encoded bodies as the
 * SDK sends them, `Idempotency-Key` replays, and Stripe's error envelope. Its state is plain maps
 * a test seeds and inspects; `deliver` signs an event as Stripe would and posts it to Steward.
 *
 *   await using stripe = await stripeFake(() => h.clock.now);
 *   await using h = await setup({ stripe: stripe.access });
 */
import Stripe from "stripe";
import { stripeAccess } from "../domain/billing/stripe_client.ts";
import type { StripeAccess } from "../domain/shared/services.ts";
import type { Harness, Reply } from "./_harness.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

export const STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dcStewardFake0001";
export const WEBHOOK_SECRET = "whsec_StewardFakeSigningSecret00000000001";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const randomId = (prefix: string, length = 24) =>
  `${prefix}_${
    Array.from(crypto.getRandomValues(new Uint8Array(length)), (b) => ALPHABET[b % 62]).join("")
  }`;

/** `a[b][0][c]=1` (how the SDK encodes) as `{ a: { b: [{ c: "1" }] } }`. */
export function parseForm(params: URLSearchParams): Obj {
  const root: Obj = {};
  for (const [name, value] of params) {
    const path = name.replace(/\]/g, "").split("[");
    let at = root;
    path.forEach((part, i) => {
      if (i === path.length - 1) at[part] = value;
      else at = at[part] ??= {};
    });
  }
  const arrays = (v: unknown): unknown => {
    if (typeof v !== "object" || v === null) return v;
    const entries = Object.entries(v as Obj).map(([k, x]) => [k, arrays(x)] as const);
    return entries.length && entries.every(([k]) => /^\d+$/.test(k))
      ? entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, x]) => x)
      : Object.fromEntries(entries);
  };
  return arrays(root) as Obj;
}

export interface PriceSeed {
  id?: string;
  unit_amount: number;
  currency?: string;
  interval?: "day" | "week" | "month" | "year" | null;
  interval_count?: number;
  usage_type?: "licensed" | "metered";
}

export interface SubscriptionSeed {
  id?: string;
  customer: string;
  price: string;
  status?: string;
  quantity?: number;
  metadata?: Record<string, string>;
  cancel_at_period_end?: boolean;
  trial_end?: number | null;
  created?: number;
}

export interface InvoiceSeed {
  id?: string;
  customer: string;
  subscription?: string | null;
  status?: "draft" | "open" | "paid" | "uncollectible" | "void";
  amount_due: number;
  amount_paid?: number;
  currency?: string;
  metadata?: Record<string, string>;
  created?: number;
}

export class StripeFake {
  readonly customers = new Map<string, Obj>();
  readonly prices = new Map<string, Obj>();
  readonly subscriptions = new Map<string, Obj>();
  readonly invoices = new Map<string, Obj>();
  readonly checkoutSessions = new Map<string, Obj>();
  readonly portalSessions = new Map<string, Obj>();
  readonly invoicePayments = new Map<string, Obj>();
  /** Meter events by identifier: a second one with the same identifier is not recorded. */
  readonly meterEvents = new Map<string, Obj>();
  /** Every request: method, path (with query) and the parsed parameters. */
  readonly requests: { method: string; path: string; params: Obj }[] = [];
  readonly url: string;
  /** The SDK pointed here, built as main.ts builds it. */
  readonly access: StripeAccess;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #replays = new Map<string, Response>();
  #failures: number[] = [];

  /** Stripe's clock (ms): a test sets the harness's, `() => h.clock.now`. */
  now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => this.#handle(req),
    );
    this.url = `http://127.0.0.1:${this.#server.addr.port}`;
    this.access = stripeAccess(STRIPE_KEY, WEBHOOK_SECRET, this.url);
  }

  /** Stripe's clock: epoch seconds. */
  seconds = () => Math.floor(this.now() / 1000);

  /** The next `count` requests fail with `status` (and Stripe-Should-Retry: false). */
  fail(count: number, status = 500) {
    for (let i = 0; i < count; i++) this.#failures.push(status);
  }

  /** The API calls made to `path` (a prefix, like "/v1/customers"), by method. */
  calls(method: string, path: string) {
    return this.requests.filter((r) => r.method === method && r.path.startsWith(path));
  }

  // ── Objects, as Stripe shapes them ────────────────────────────────────────

  addCustomer(seed: { id?: string; name?: string; metadata?: Record<string, string> } = {}) {
    const customer: Obj = {
      id: seed.id ?? randomId("cus", 14),
      object: "customer",
      created: this.seconds(),
      email: null,
      name: seed.name ?? null,
      metadata: { ...seed.metadata },
      livemode: false,
      delinquent: false,
      currency: null,
    };
    this.customers.set(customer.id, customer);
    return customer;
  }

  addPrice(seed: PriceSeed) {
    const recurring = seed.interval === null ? null : {
      interval: seed.interval ?? "month",
      interval_count: seed.interval_count ?? 1,
      meter: null,
      trial_period_days: null,
      usage_type: seed.usage_type ?? "licensed",
    };
    const price: Obj = {
      id: seed.id ?? randomId("price"),
      object: "price",
      active: true,
      billing_scheme: "per_unit",
      created: this.seconds(),
      currency: seed.currency ?? "usd",
      livemode: false,
      metadata: {},
      product: randomId("prod", 14),
      recurring,
      type: recurring ? "recurring" : "one_time",
      unit_amount: seed.unit_amount,
      unit_amount_decimal: String(seed.unit_amount),
    };
    this.prices.set(price.id, price);
    return price;
  }

  addSubscription(seed: SubscriptionSeed) {
    const price = this.prices.get(seed.price);
    if (!price) throw new Error(`stripe fake: no price ${seed.price}`);
    const id = seed.id ?? randomId("sub");
    const start = seed.created ?? this.seconds();
    const subscription: Obj = {
      id,
      object: "subscription",
      cancel_at: null,
      cancel_at_period_end: seed.cancel_at_period_end ?? false,
      canceled_at: null,
      created: start,
      currency: price.currency,
      customer: seed.customer,
      ended_at: null,
      items: {
        object: "list",
        data: [],
        has_more: false,
        url: `/v1/subscription_items?subscription=${id}`,
      },
      latest_invoice: null,
      livemode: false,
      metadata: { ...seed.metadata },
      start_date: start,
      status: seed.status ?? "active",
      trial_end: seed.trial_end ?? null,
      trial_start: null,
    };
    this.subscriptions.set(id, subscription);
    this.setPrice(id, seed.price, seed.quantity ?? 1);
    return subscription;
  }

  /** Moves the subscription to another price (as a plan change in the portal does). */
  setPrice(subscriptionId: string, priceId: string, quantity = 1) {
    const subscription = this.subscriptions.get(subscriptionId)!;
    const price = this.prices.get(priceId)!;
    const start = this.seconds();
    const days = price.recurring?.interval === "year" ? 365 : 30;
    subscription.items.data = [{
      id: randomId("si", 14),
      object: "subscription_item",
      created: start,
      current_period_end: start + days * 86_400,
      current_period_start: start,
      discounts: [],
      metadata: {},
      price,
      quantity,
      subscription: subscriptionId,
      tax_rates: [],
    }];
    return subscription;
  }

  /** Cancels it now, as Stripe does when a subscription is deleted. */
  cancel(subscriptionId: string) {
    const subscription = this.subscriptions.get(subscriptionId)!;
    Object.assign(subscription, {
      status: "canceled",
      canceled_at: this.seconds(),
      ended_at: this.seconds(),
    });
    return subscription;
  }

  addInvoice(seed: InvoiceSeed) {
    const id = seed.id ?? randomId("in");
    const created = seed.created ?? this.seconds();
    const status = seed.status ?? "open";
    const subscription = seed.subscription ? this.subscriptions.get(seed.subscription) : null;
    const invoice: Obj = {
      id,
      object: "invoice",
      amount_due: seed.amount_due,
      amount_paid: seed.amount_paid ?? (status === "paid" ? seed.amount_due : 0),
      amount_remaining: status === "paid" ? 0 : seed.amount_due,
      created,
      currency: seed.currency ?? "usd",
      customer: seed.customer,
      hosted_invoice_url: `https://invoice.stripe.com/i/acct_fake/test_${id}`,
      lines: {
        object: "list",
        data: [{
          id: randomId("il"),
          object: "line_item",
          amount: seed.amount_due,
          currency: seed.currency ?? "usd",
          invoice: id,
          period: { start: created, end: created + 30 * 86_400 },
          quantity: 1,
        }],
        has_more: false,
        url: `/v1/invoices/${id}/lines`,
      },
      livemode: false,
      metadata: { ...seed.metadata },
      number: `FAKE-${this.invoices.size + 1}`.padEnd(9, "0"),
      parent: seed.subscription
        ? {
          quote_details: null,
          subscription_details: {
            metadata: { ...subscription?.metadata },
            subscription: seed.subscription,
          },
          type: "subscription_details",
        }
        : null,
      period_end: created,
      period_start: created,
      status,
      status_transitions: {
        finalized_at: status === "draft" ? null : created,
        marked_uncollectible_at: null,
        paid_at: status === "paid" ? created : null,
        voided_at: null,
      },
      total: seed.amount_due,
    };
    this.invoices.set(id, invoice);
    return invoice;
  }

  /** A charge that paid `invoiceId` (through a payment intent), refunded by `refunded`. */
  chargeFor(invoiceId: string, refunded = 0) {
    const invoice = this.invoices.get(invoiceId)!;
    const paymentIntent = randomId("pi");
    const payment: Obj = {
      id: randomId("inpay"),
      object: "invoice_payment",
      amount_paid: invoice.amount_paid,
      amount_requested: invoice.amount_due,
      created: this.seconds(),
      currency: invoice.currency,
      invoice: invoiceId,
      is_default: true,
      livemode: false,
      payment: { type: "payment_intent", payment_intent: paymentIntent },
      status: "paid",
      status_transitions: { canceled_at: null, paid_at: this.seconds() },
    };
    this.invoicePayments.set(payment.id, payment);
    return {
      id: randomId("ch"),
      object: "charge",
      amount: invoice.amount_paid,
      amount_captured: invoice.amount_paid,
      amount_refunded: refunded,
      created: this.seconds(),
      currency: invoice.currency,
      customer: invoice.customer,
      livemode: false,
      metadata: {},
      paid: true,
      payment_intent: paymentIntent,
      refunded: refunded >= invoice.amount_paid,
      status: "succeeded",
    } as Obj;
  }

  /** Completes a checkout session as paying does: a subscription with the session's price. */
  completeCheckout(sessionId: string) {
    const session = this.checkoutSessions.get(sessionId)!;
    const subscription = this.addSubscription({
      customer: session.customer,
      price: session.line_items[0].price,
      quantity: Number(session.line_items[0].quantity ?? 1),
      metadata: session.subscription_data?.metadata ?? {},
    });
    Object.assign(session, {
      status: "complete",
      payment_status: "paid",
      subscription: subscription.id,
    });
    return { session: this.#public(session), subscription };
  }

  // ── Events ───────────────────────────────────────────────────────────────

  /** An event as Stripe sends it, carrying a copy of `object` as it is now. */
  event(type: string, object: Obj, opts: { id?: string; created?: number } = {}): Obj {
    return {
      id: opts.id ?? randomId("evt"),
      object: "event",
      api_version: Stripe.API_VERSION,
      created: opts.created ?? this.seconds(),
      data: { object: structuredClone(object) },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    };
  }

  /** Stripe's signature header for `payload`, at `timestamp` (default now). */
  sign(payload: string, timestamp = this.seconds(), secret = WEBHOOK_SECRET): Promise<string> {
    // The SDK on Deno signs with Web Crypto, which is asynchronous only.
    return this.access.client.webhooks.generateTestHeaderStringAsync({
      payload,
      secret,
      timestamp,
    });
  }

  /** Posts `event` to Steward's receiver, signed (or with the header given). */
  async deliver(
    h: Pick<Harness, "call">,
    event: Obj,
    opts: { signature?: string; timestamp?: number; secret?: string } = {},
  ): Promise<Reply> {
    const payload = JSON.stringify(event, null, 2);
    const signature = opts.signature ?? await this.sign(payload, opts.timestamp, opts.secret);
    return await h.call("POST", "/v1/stripe/webhook", {
      raw: payload,
      headers: { "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature },
    });
  }

  // ── The API ──────────────────────────────────────────────────────────────

  #error(status: number, message: string, extra: Obj = {}): Response {
    return Response.json({
      error: {
        message,
        type: status >= 500 ? "api_error" : "invalid_request_error",
        request_log_url: null,
        ...extra,
      },
    }, { status, headers: { "Request-Id": randomId("req", 14), "Stripe-Should-Retry": "false" } });
  }

  #missing(what: string, id: string) {
    return this.#error(404, `No such ${what}: '${id}'`, {
      code: "resource_missing",
      doc_url: "https://stripe.com/docs/error-codes/resource-missing",
      param: "id",
    });
  }

  /** A stored object as the API answers it (internal fields dropped). */
  #public(o: Obj): Obj {
    const { line_items: _l, subscription_data: _s, ...shown } = o;
    return structuredClone(shown);
  }

  #list(items: Obj[], url: string, params: Obj) {
    const limit = Math.min(100, Number(params.limit ?? 10));
    const after = params.starting_after
      ? items.findIndex((o) => o.id === params.starting_after)
      : -1;
    const page = items.slice(after + 1, after + 1 + limit);
    return {
      object: "list",
      data: page.map((o) => this.#public(o)),
      has_more: after + 1 + limit < items.length,
      url,
    };
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const form = req.method === "GET" ? url.searchParams : new URLSearchParams(await req.text());
    const params = parseForm(form);
    this.requests.push({ method: req.method, path: url.pathname + url.search, params });
    if (!req.headers.get("Authorization")?.endsWith(STRIPE_KEY)) {
      return this.#error(401, "Invalid API Key provided");
    }
    const failure = this.#failures.shift();
    if (failure) return this.#error(failure, "An unknown error occurred");
    const key = req.method === "POST" ? req.headers.get("Idempotency-Key") : null;
    const replay = key && this.#replays.get(key);
    if (replay) return replay.clone();
    const res = this.#route(req.method, url.pathname, params);
    // Kept at once (no await in between): a concurrent request with the key gets this answer.
    if (key) this.#replays.set(key, res.clone());
    return res;
  }

  /** The endpoints Steward calls: method, path pattern, answer. */
  #routes: [string, RegExp, (id: string, p: Obj) => Response][] = [
    [
      "POST",
      /^\/v1\/customers$/,
      (_, p) => Response.json(this.addCustomer({ name: p.name, metadata: p.metadata })),
    ],
    ["GET", /^\/v1\/customers\/([^/]+)$/, (id) => this.#found(this.customers, "customer", id)],
    ["POST", /^\/v1\/customers\/([^/]+)$/, (id, p) => {
      const customer = this.customers.get(id);
      if (!customer) return this.#missing("customer", id);
      if (p.name !== undefined) customer.name = p.name;
      if (p.metadata) Object.assign(customer.metadata, p.metadata);
      return Response.json(this.#public(customer));
    }],
    ["GET", /^\/v1\/prices\/([^/]+)$/, (id) => this.#found(this.prices, "price", id)],
    [
      "GET",
      /^\/v1\/subscriptions\/([^/]+)$/,
      (id) => this.#found(this.subscriptions, "subscription", id),
    ],
    ["GET", /^\/v1\/subscriptions$/, (_, p) => {
      // Newest first; without `status`, the ones that have not ended.
      const all = [...this.subscriptions.values()]
        .filter((s) =>
          p.status === "all" || (p.status ? s.status === p.status : s.status !== "canceled")
        )
        .sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1));
      return Response.json(this.#list(all, "/v1/subscriptions", p));
    }],
    ["GET", /^\/v1\/invoices\/([^/]+)$/, (id) => this.#found(this.invoices, "invoice", id)],
    ["GET", /^\/v1\/invoice_payments$/, (_, p) => {
      const matching = [...this.invoicePayments.values()].filter((i) =>
        (!p.invoice || i.invoice === p.invoice) &&
        (!p.payment?.payment_intent || i.payment.payment_intent === p.payment.payment_intent)
      );
      return Response.json(this.#list(matching, "/v1/invoice_payments", p));
    }],
    ["POST", /^\/v1\/checkout\/sessions$/, (_, p) => {
      if (p.customer && !this.customers.has(p.customer)) {
        return this.#missing("customer", p.customer);
      }
      const price = p.line_items?.[0]?.price;
      if (!this.prices.has(price)) return this.#missing("price", price);
      const id = randomId("cs_test", 58);
      const session: Obj = {
        id,
        object: "checkout.session",
        cancel_url: p.cancel_url ?? null,
        client_reference_id: p.client_reference_id ?? null,
        created: this.seconds(),
        customer: p.customer ?? null,
        expires_at: this.seconds() + 86_400,
        livemode: false,
        metadata: { ...p.metadata },
        mode: p.mode,
        payment_status: "unpaid",
        status: "open",
        subscription: null,
        success_url: p.success_url ?? null,
        url: `https://checkout.stripe.com/c/pay/${id}`,
        // Kept to complete the session; not part of the answer.
        line_items: p.line_items,
        subscription_data: p.subscription_data,
      };
      this.checkoutSessions.set(id, session);
      return Response.json(this.#public(session));
    }],
    [
      "GET",
      /^\/v1\/checkout\/sessions\/([^/]+)$/,
      (id) => this.#found(this.checkoutSessions, "checkout session", id),
    ],
    ["POST", /^\/v1\/billing_portal\/sessions$/, (_, p) => {
      if (!this.customers.has(p.customer)) return this.#missing("customer", p.customer);
      const session: Obj = {
        id: randomId("bps"),
        object: "billing_portal.session",
        configuration: randomId("bpc"),
        created: this.seconds(),
        customer: p.customer,
        livemode: false,
        locale: null,
        on_behalf_of: null,
        return_url: p.return_url ?? null,
        url: `https://billing.stripe.com/p/session/test_${randomId("x", 20).slice(2)}`,
      };
      this.portalSessions.set(session.id, session);
      return Response.json(session);
    }],
    ["POST", /^\/v1\/billing\/meter_events$/, (_, p) => {
      const identifier = p.identifier ?? randomId("mev");
      const event: Obj = {
        object: "billing.meter_event",
        created: this.seconds(),
        event_name: p.event_name,
        identifier,
        livemode: false,
        payload: { ...p.payload },
        timestamp: Number(p.timestamp ?? this.seconds()),
      };
      // Stripe accepts a repeated identifier and drops it: a retry is a no-op.
      if (!this.meterEvents.has(identifier)) this.meterEvents.set(identifier, event);
      return Response.json(event);
    }],
  ];

  #found(map: Map<string, Obj>, what: string, id: string) {
    const o = map.get(id);
    return o ? Response.json(this.#public(o)) : this.#missing(what, id);
  }

  #route(method: string, path: string, params: Obj): Response {
    for (const [m, pattern, answer] of this.#routes) {
      const match = m === method && pattern.exec(path);
      if (match) return answer(decodeURIComponent(match[1] ?? ""), params);
    }
    return this.#error(404, `Unrecognized request URL (${method}: ${path}).`);
  }

  async [Symbol.asyncDispose]() {
    await this.#server.shutdown();
  }
}

/** Starts a fake on a free port of 127.0.0.1, on Stripe time from `now` (ms). */
export function stripeFake(now: () => number = Date.now): StripeFake {
  return new StripeFake(now);
}
