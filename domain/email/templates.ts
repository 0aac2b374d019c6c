/**
 * What Steward writes to people: one template per occasion, each rendered as plain text and as
 * HTML. Every value is escaped in the HTML; links are built from the public URL. Subjects never
 * carry a token (the message list shows them).
 */

export interface Brand {
  /** STEWARD_PLATFORM_NAME: who the mail is from, in words. */
  platform: string;
  /** STEWARD_PUBLIC_URL: where links in mail point. */
  publicUrl: string;
}

/** Where a link in a message leads: a console page of the public URL (the console reads it). */
export const LINKS = {
  acceptInvitation: "/console/accept-invitation",
  resetPassword: "/console/reset-password",
  signIn: "/console/sign-in",
} as const;

interface Vars {
  invitation: {
    tenant: string;
    role: string;
    inviter: string | null;
    token: string;
    expires_at: string;
  };
  password_reset: { name: string; token: string; expires_at: string };
  password_changed: { name: string; at: string };
  new_sign_in: { name: string; ip: string; user_agent: string | null; at: string };
  account_status: {
    name: string;
    status: "blocked" | "suspended";
    until: string | null;
    reason: string | null;
  };
  api_key_expiring: { tenant: string; key_name: string; key_start: string; expires_at: string };
  alert: {
    state: "fired" | "resolved";
    rule: string;
    value: string;
    started_at: string;
    resolved_at: string | null;
    link: string;
  };
  payment_failed: { tenant: string; amount: string; invoice: string; hosted_url: string | null };
  test: { sent_by: string };
}

export type TemplateName = keyof Vars;
export const TEMPLATES = [
  "invitation",
  "password_reset",
  "password_changed",
  "new_sign_in",
  "account_status",
  "api_key_expiring",
  "alert",
  "payment_failed",
  "test",
] as const satisfies readonly TemplateName[];

export interface Rendered {
  subject: string;
  text: string;
  html: string;
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

/** A link under the public URL, with its query. */
const link = (brand: Brand, path: string, query: Record<string, string>) =>
  `${brand.publicUrl.replace(/\/+$/, "")}${path}?${new URLSearchParams(query)}`;

/** Paragraphs of text, each a line in the text part and a <p> in the HTML part. */
type Part = string | { link: string; label: string };

function compose(brand: Brand, subject: string, parts: Part[]): Rendered {
  const text = parts.map((p) => typeof p === "string" ? p : `${p.label}: ${p.link}`);
  const html = parts.map((p) =>
    typeof p === "string"
      ? `<p>${escapeHtml(p)}</p>`
      : `<p><a href="${escapeHtml(p.link)}">${escapeHtml(p.label)}</a></p>`
  );
  const footer = `— ${brand.platform}`;
  return {
    subject,
    text: [...text, "", footer].join("\n"),
    html: `<!doctype html><html><body>${html.join("")}<p>${escapeHtml(footer)}</p></body></html>`,
  };
}

const RENDER: { [T in TemplateName]: (brand: Brand, v: Vars[T]) => Rendered } = {
  invitation: (b, v) =>
    compose(b, `You are invited to join ${v.tenant} on ${b.platform}`, [
      `${v.inviter ?? "Someone"} invited you to join ${v.tenant} as ${v.role}.`,
      { label: "Accept the invitation", link: link(b, LINKS.acceptInvitation, { token: v.token }) },
      `The invitation expires at ${v.expires_at}. If you did not expect it, ignore this message.`,
    ]),
  password_reset: (b, v) =>
    compose(b, `Reset your ${b.platform} password`, [
      `Hello ${v.name},`,
      "A password reset was requested for your account.",
      { label: "Choose a new password", link: link(b, LINKS.resetPassword, { token: v.token }) },
      `The link works once, until ${v.expires_at}. If you did not ask for it, ignore this message: your password stays as it is.`,
    ]),
  password_changed: (b, v) =>
    compose(b, `Your ${b.platform} password was changed`, [
      `Hello ${v.name},`,
      `Your password was changed at ${v.at}, and every session was signed out.`,
      "If this was not you, ask your administrator to reset your password now.",
    ]),
  new_sign_in: (b, v) =>
    compose(b, `New sign-in to your ${b.platform} account`, [
      `Hello ${v.name},`,
      `Your account was signed in to at ${v.at} from ${v.ip}${
        v.user_agent ? ` (${v.user_agent})` : ""
      }, an address it had not been used from before.`,
      "If this was you, nothing needs doing. If not, change your password and tell your administrator.",
      { label: "Sign in", link: link(b, LINKS.signIn, {}) },
    ]),
  account_status: (b, v) =>
    compose(b, `Your ${b.platform} account was ${v.status}`, [
      `Hello ${v.name},`,
      v.status === "suspended" && v.until
        ? `Your account is suspended until ${v.until}.`
        : `Your account was ${v.status}.`,
      ...(v.reason ? [`Reason: ${v.reason}`] : []),
      "Ask your administrator if you think this is a mistake.",
    ]),
  api_key_expiring: (b, v) =>
    compose(b, `An API key of ${v.tenant} expires in 7 days`, [
      `The API key "${v.key_name}" (${v.key_start}…) of ${v.tenant} expires at ${v.expires_at}.`,
      "Create a new key and move your clients to it before then; the old key stops working at that time.",
    ]),
  alert: (b, v) =>
    compose(b, `[${v.state === "fired" ? "FIRING" : "RESOLVED"}] ${v.rule}`, [
      v.state === "fired"
        ? `The alert ${v.rule} fired at ${v.started_at} with value ${v.value}.`
        : `The alert ${v.rule} resolved at ${v.resolved_at} (it fired at ${v.started_at}).`,
      { label: "See the alert", link: v.link },
    ]),
  payment_failed: (b, v) =>
    compose(b, `A payment for ${v.tenant} on ${b.platform} failed`, [
      `The payment of ${v.amount} for invoice ${v.invoice} failed.`,
      ...(v.hosted_url ? [{ label: "Pay the invoice", link: v.hosted_url }] : []),
      "Update the payment method to keep the subscription active.",
    ]),
  test: (b, v) =>
    compose(b, `${b.platform} test message`, [
      `This is a test message from ${b.platform}, sent by ${v.sent_by}.`,
      "If you can read it, mail from this platform reaches you.",
    ]),
};

export function render<T extends TemplateName>(brand: Brand, template: T, vars: Vars[T]): Rendered {
  return RENDER[template](brand, vars);
}

export type TemplateVars<T extends TemplateName> = Vars[T];
