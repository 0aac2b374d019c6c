/**
 * Alerts: the rules of platform/alert_rules.ts evaluated every minute (the `evaluate-alerts`
 * maintenance task, under its tick's lease). A rule whose condition has held for its duration
 * fires an alert (one firing alert per rule at a time); the alert resolves when the condition no
 * longer holds. Each transition commits with its `alert.fired` / `alert.resolved` event (to the
 * platform's webhook endpoints) and a mail to every active super admin and admin.
 */
import { getBatched } from "../../kv/batch.ts";
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import type { Table, Versioned } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { updateRecord } from "../audit/records.ts";
import { composeEmail, type EmailMessage, queueEmail } from "../email/outbox.ts";
import type { User } from "../identity/users.ts";
import { notFound } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import { type AlertRuleName, alertRules, type EffectiveRule } from "./alert_rules.ts";

export const ALERT_STATES = ["firing", "resolved"] as const;
export type AlertState = typeof ALERT_STATES[number];

export interface Alert {
  id: string;
  rule: string;
  state: AlertState;
  /** The value that fired it. */
  value: number;
  threshold: number;
  /** The resource it concerns: a path of the API. */
  link: string;
  started_at: string;
  resolved_at: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
}

/** A rule's evaluation state, between two ticks. */
export interface RuleState {
  /** Since when the condition holds; null while it does not. */
  pending_since: string | null;
  last_value: number | null;
  last_evaluated_at: string;
}

const alertTable: Table<Alert> = { key: keys.alert };

/** The platform admins who are mailed an alert: a scan of the users (there is no role index). */
async function alertRecipients(svc: Services): Promise<string[]> {
  const to: string[] = [];
  for await (const { value: u } of svc.kv.list<User>({ prefix: keys.users() })) {
    if (u.status !== "active") continue;
    const admin = u.platform_role === "super_admin" || u.platform_role === "admin";
    if (admin && u.email) to.push(u.email);
  }
  return to;
}

async function alertMails(svc: Services, alert: Alert): Promise<EmailMessage[]> {
  // A mail's body is sealed: with the vault sealed (itself an alert) none can be written.
  if (svc.vault.state.sealed) return [];
  const link = `${svc.brand.publicUrl.replace(/\/+$/, "")}/v1/admin/system/alerts/${alert.id}`;
  const mails: EmailMessage[] = [];
  for (const to of await alertRecipients(svc)) {
    mails.push(
      await composeEmail(svc, {
        to,
        template: "alert",
        vars: {
          state: alert.state === "firing" ? "fired" : "resolved",
          rule: alert.rule,
          value: String(alert.value),
          started_at: alert.started_at,
          resolved_at: alert.resolved_at,
          link,
        },
      }),
    );
  }
  return mails;
}

/** Commits a transition (fired, or resolved) with its event and mails; false on a lost race. */
async function transition(
  svc: Services,
  rule: string,
  checks: Deno.AtomicCheck[],
  state: RuleState,
  before: Alert | null,
  after: Alert,
): Promise<boolean> {
  const now = svc.now();
  const mails = await alertMails(svc, after);
  const op = svc.kv.atomic();
  for (const c of checks) op.check(c);
  op.set(keys.alert(after.id), after).set(keys.alertRuleState(rule), state);
  if (after.state === "firing") op.set(keys.alertOpen(rule), after.id);
  else op.delete(keys.alertOpen(rule));
  recordChange(op, now, SYSTEM_ACTOR, {
    action: after.state === "firing" ? "alert.fired" : "alert.resolved",
    resource_type: "alert",
    resource_id: after.id,
    tenant_id: null,
    before: before as unknown as Record<string, unknown> | null,
    after: after as unknown as Record<string, unknown>,
  });
  for (const m of mails) queueEmail(op, now, m);
  return (await commit(op)) !== null;
}

/** Evaluates one rule at `svc.now()`; what it did. */
async function evaluateRule(
  svc: Services,
  rule: EffectiveRule,
): Promise<"fired" | "resolved" | null> {
  const now = svc.now();
  const [stateEntry, openEntry] = await svc.kv.getMany<[RuleState, string]>([
    keys.alertRuleState(rule.name),
    keys.alertOpen(rule.name),
  ]);
  const measure = await rule.measure(svc);
  const holds = measure !== null && measure.value >= rule.threshold;
  const pendingSince = holds ? stateEntry.value?.pending_since ?? iso(now) : null;
  const state: RuleState = {
    pending_since: pendingSince,
    last_value: measure?.value ?? null,
    last_evaluated_at: iso(now),
  };
  const checks = [stateEntry, openEntry];
  const open = openEntry.value
    ? (await svc.kv.get<Alert>(keys.alert(openEntry.value))).value
    : null;
  if (holds && !open && now - Date.parse(pendingSince!) >= rule.duration_seconds * 1000) {
    const alert: Alert = {
      id: newId("alr", now),
      rule: rule.name,
      state: "firing",
      value: measure!.value,
      threshold: rule.threshold,
      link: measure!.link,
      started_at: iso(now),
      resolved_at: null,
      acknowledged_at: null,
      acknowledged_by: null,
    };
    return await transition(svc, rule.name, checks, state, null, alert) ? "fired" : null;
  }
  if (!holds && open) {
    const resolved: Alert = { ...open, state: "resolved", resolved_at: iso(now) };
    return await transition(svc, rule.name, checks, state, open, resolved) ? "resolved" : null;
  }
  await svc.kv.atomic().check(stateEntry).set(keys.alertRuleState(rule.name), state).commit();
  return null;
}

/** The `evaluate-alerts` task: every rule once; a rule whose measure fails is skipped. */
export async function evaluateAlerts(
  svc: Services,
): Promise<{ alerts_fired: number; alerts_resolved: number; rule_errors: number }> {
  const result = { alerts_fired: 0, alerts_resolved: 0, rule_errors: 0 };
  for (const rule of alertRules(svc)) {
    try {
      const did = await evaluateRule(svc, rule);
      if (did === "fired") result.alerts_fired++;
      if (did === "resolved") result.alerts_resolved++;
    } catch (err) {
      result.rule_errors++;
      console.error(`alerts: rule ${rule.name}:`, err);
    }
  }
  return result;
}

/** The firing alerts, one per rule at most (for the operations endpoints and health). */
export async function firingAlerts(svc: Services): Promise<Alert[]> {
  const ids: string[] = [];
  for await (const e of svc.kv.list<string>({ prefix: keys.alertsOpen() })) ids.push(e.value);
  if (ids.length === 0) return [];
  const found = await svc.kv.getMany<Alert[]>(ids.map((id) => keys.alert(id)));
  return found.flatMap((e) => e.value && e.value.state === "firing" ? [e.value] : []);
}

export interface AlertFilter {
  state?: AlertState;
  rule?: string;
  /** Alerts started at or after this instant (ms). */
  since?: number;
}

/** Alerts, newest first, with their total. */
export async function listAlerts(
  svc: Services,
  filter: AlertFilter,
  page: PageRequest,
): Promise<Page<Alert> & Counted> {
  return await listCounted<Alert>(svc.kv, {
    selector: { prefix: keys.alerts() },
    filter: (a) =>
      (!filter.state || a.state === filter.state) &&
      (!filter.rule || a.rule === filter.rule) &&
      (filter.since === undefined || Date.parse(a.started_at) >= filter.since),
  }, { ...page, reverse: true });
}

export async function getAlert(svc: Services, id: string): Promise<Versioned<Alert>> {
  const entry = await svc.kv.get<Alert>(keys.alert(id));
  if (entry.versionstamp === null) throw notFound("alert");
  return { value: entry.value!, versionstamp: entry.versionstamp };
}

/** Acknowledges an alert (firing or resolved); acknowledging it again changes nothing. */
export async function acknowledgeAlert(
  svc: Services,
  actor: Actor,
  id: string,
): Promise<Versioned<Alert>> {
  return await updateRecord(svc, actor, alertTable, {
    action: "alert.acknowledged",
    resource_type: "alert",
    id,
    noun: "alert",
    tenant_id: () => null,
    apply: (a) =>
      a.acknowledged_at ? a : { ...a, acknowledged_at: iso(svc.now()), acknowledged_by: actor.id },
  });
}

/** A rule as GET /v1/admin/system/alert-rules shows it, with its current state. */
export interface AlertRuleView {
  name: AlertRuleName;
  description: string;
  unit: string;
  threshold: number;
  duration_seconds: number;
  source: EffectiveRule["source"];
  state: "ok" | "pending" | "firing";
  pending_since: string | null;
  last_value: number | null;
  last_evaluated_at: string | null;
  alert_id: string | null;
}

export async function listAlertRules(svc: Services): Promise<AlertRuleView[]> {
  const rules = alertRules(svc);
  // More rules than one getMany takes (10): batched reads.
  const [states, open] = await Promise.all([
    Promise.all(rules.map((r) => getBatched<RuleState>(svc.kv, keys.alertRuleState(r.name)))),
    Promise.all(rules.map((r) => getBatched<string>(svc.kv, keys.alertOpen(r.name)))),
  ]);
  return rules.map((r, i) => {
    const s = states[i].value;
    const alertId = open[i].value;
    return {
      name: r.name,
      description: r.description,
      unit: r.unit,
      threshold: r.threshold,
      duration_seconds: r.duration_seconds,
      source: r.source,
      state: alertId ? "firing" : s?.pending_since ? "pending" : "ok",
      pending_since: s?.pending_since ?? null,
      last_value: s?.last_value ?? null,
      last_evaluated_at: s?.last_evaluated_at ?? null,
      alert_id: alertId,
    };
  });
}
