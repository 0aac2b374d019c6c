/**
 * `deno task admin <command>`: recovery and setup directly on the store (STEWARD_KV_PATH),
 * without the HTTP API. Every change is audited with actor `system`.
 *
 *   create-token   --name NAME --permissions "*"|p1,p2 [--tenant ID|SLUG] [--expires-at ISO]
 *   create-user    --email EMAIL --name NAME [--role super_admin|admin|…] [--password-stdin]
 *   reset-password --email EMAIL [--password-stdin]
 *   restore        --from FILE [--force]
  rotate-master-key   re-wraps every data key with STEWARD_MASTER_KEY, opening those still
                      wrapped with STEWARD_MASTER_KEY_PREVIOUS (which is then no longer needed)
 *
 * Without --password-stdin a strong password is generated and printed once.
 */
import { parseArgs } from "node:util";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { Aggregator } from "./domain/usage/aggregator.ts";
import { AppError } from "./domain/shared/errors.ts";
import { DEFAULT_PASSWORD_POLICY } from "./domain/identity/passwords.ts";
import { PLATFORM_ROLES, type PlatformRole } from "./domain/access/permissions.ts";
import { SYSTEM_PRINCIPAL } from "./domain/access/principal.ts";
import { randomBase62 } from "./domain/shared/secrets.ts";
import { type Services, SYSTEM_ACTOR } from "./domain/shared/services.ts";
import { Vault } from "./domain/vault/vault.ts";
import { mailerFor } from "./domain/email/smtp.ts";
import {
  fromBase64,
  MasterKeyError,
  masterKeyPath,
  resolveMasterKey,
} from "./domain/vault/master_key.ts";
import { restoreBackup } from "./domain/vault/backups.ts";
import { realNetwork } from "./domain/webhooks/targets.ts";
import { createToken } from "./domain/keys/tokens.ts";
import { resolveTenant } from "./domain/tenancy/tenants.ts";
import { createUser, findUserByEmail, setPassword } from "./domain/identity/users.ts";
import { KvCache } from "./kv/cache.ts";
import { openKv } from "./kv/open.ts";
import { SumBuffer } from "./kv/sum_buffer.ts";
import { rewrapAll } from "./domain/platform/vault_rotation.ts";

const USAGE = `usage: deno task admin <command> [options]

  create-token   --name NAME --permissions "*"|p1,p2 [--tenant ID|SLUG] [--expires-at ISO-8601]
  create-user    --email EMAIL --name NAME [--role ${PLATFORM_ROLES.join("|")}] [--password-stdin]
  reset-password --email EMAIL [--password-stdin]
  restore        --from FILE [--force]   a backup into an empty store (--force empties it first)

The store is STEWARD_KV_PATH (default ./data/steward.kv).`;

async function readPassword(fromStdin: boolean): Promise<{ password: string; generated: boolean }> {
  if (!fromStdin) return { password: randomBase62(24), generated: true };
  const text = await new Response(Deno.stdin.readable).text();
  return { password: text.replace(/\r?\n$/, ""), generated: false };
}

/**
 * A backup opens only with the master key it was written under: a restore never makes a new key
 * file (as a first start does), it needs the variable or the key file already there.
 */
async function requireMasterKey(config: Config): Promise<void> {
  const path = config.STEWARD_KV_PATH;
  if (config.STEWARD_MASTER_KEY || path === ":memory:" || /^https?:\/\//.test(path)) return;
  try {
    await Deno.stat(masterKeyPath(path));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new MasterKeyError(
      "a restore needs the master key the backup was written under: set STEWARD_MASTER_KEY, or " +
        `copy the key file of the store it was taken from to ${masterKeyPath(path)}`,
    );
  }
}

async function run(svc: Services, command: string | undefined, args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      name: { type: "string" },
      permissions: { type: "string" },
      tenant: { type: "string" },
      "expires-at": { type: "string" },
      email: { type: "string" },
      role: { type: "string" },
      "password-stdin": { type: "boolean", default: false },
      from: { type: "string" },
      force: { type: "boolean", default: false },
    },
  });
  const need = (flag: keyof typeof values) => {
    const v = values[flag];
    if (typeof v !== "string" || !v) throw new AppError("BAD_REQUEST", `--${flag} is required`);
    return v;
  };

  switch (command) {
    case "create-token": {
      // --tenant takes the id or the slug, as the API's {tenant} does.
      const tenant = values.tenant ? await resolveTenant(svc, values.tenant) : null;
      if (values.tenant && (!tenant || tenant.value.status === "deleted")) {
        throw new AppError("NOT_FOUND", `no tenant with id or slug "${values.tenant}"`);
      }
      const { secret, token } = await createToken(svc, SYSTEM_ACTOR, SYSTEM_PRINCIPAL, {
        name: need("name"),
        permissions: need("permissions").split(",").map((p) => p.trim()).filter(Boolean),
        tenant_id: tenant?.value.id ?? null,
        expires_at: values["expires-at"] ? new Date(values["expires-at"]).toISOString() : null,
      });
      console.log(`created service token ${token.value.id}\ntoken (shown once): ${secret}`);
      return;
    }
    case "create-user": {
      const role = values.role ?? null;
      if (role !== null && !(PLATFORM_ROLES as readonly string[]).includes(role)) {
        throw new AppError("BAD_REQUEST", `--role must be one of ${PLATFORM_ROLES.join(", ")}`);
      }
      const { password, generated } = await readPassword(values["password-stdin"]);
      const user = await createUser(svc, SYSTEM_ACTOR, {
        email: need("email"),
        name: need("name"),
        password,
        platform_role: role as PlatformRole | null,
      });
      console.log(
        `created user ${user.value.id} <${user.value.email}>${role ? ` with role ${role}` : ""}`,
      );
      if (generated) console.log(`password (shown once): ${password}`);
      return;
    }
    case "reset-password": {
      const user = await findUserByEmail(svc, need("email"));
      if (!user) throw new AppError("NOT_FOUND", "no user with that email");
      const { password, generated } = await readPassword(values["password-stdin"]);
      await setPassword(svc, SYSTEM_ACTOR, user.id, password);
      console.log(`password reset for ${user.id}; every session of the user was ended`);
      if (generated) console.log(`password (shown once): ${password}`);
      return;
    }
    case "rotate-master-key": {
      if (!svc.vault.state.previous_key_id) {
        throw new AppError("BAD_REQUEST", "set STEWARD_MASTER_KEY_PREVIOUS to the key it replaces");
      }
      const { owners, rewrapped } = await rewrapAll(svc);
      console.log(
        `re-wrapped ${rewrapped} data keys of ${owners} owners with master key ` +
          `${svc.vault.state.key_id}; STEWARD_MASTER_KEY_PREVIOUS is no longer needed`,
      );
      return;
    }
    case "restore": {
      const report = await restoreBackup(svc, SYSTEM_ACTOR, need("from"), { force: values.force });
      console.log(
        `restored ${report.entries} entries from backup ${report.backup_id} (taken ` +
          `${report.created_at}, ${report.consistency}; sha256 ${report.sha256})` +
          (report.cleared ? ` after deleting the ${report.cleared} entries the store held` : ""),
      );
      return;
    }
    default:
      console.error(USAGE);
      Deno.exit(command ? 2 : 0);
  }
}

if (import.meta.main) {
  try {
    const config = loadConfig(Deno.env.toObject());
    if (Deno.args[0] === "restore") await requireMasterKey(config);
    const masterKey = await resolveMasterKey(config.STEWARD_MASTER_KEY, config.STEWARD_KV_PATH);
    const kv = await openKv(config.STEWARD_KV_PATH);
    const counters = new SumBuffer(kv, { flushIntervalMs: 1_000, maxEntries: 1_000 });
    const svc: Services = {
      kv,
      now: Date.now,
      passwords: DEFAULT_PASSWORD_POLICY,
      sessions: { idleMs: 0, maxMs: 0 },
      // A one-shot command: nothing to cache.
      cache: new KvCache(kv, { freshMs: 0, maxEntries: 0 }),
      counters,
      aggregator: new Aggregator(counters, kv, {
        enabled: false,
        flushIntervalMs: 1_000,
        flushMaxEntries: 1_000,
        sampleRate: 0,
        retentionDays: 30,
      }),
      // The server's audit tail copies what a command records to Postgres.
      pg: null,
      vault: new Vault(masterKey.bytes, masterKey.source, {
        previous: config.STEWARD_MASTER_KEY_PREVIOUS
          ? fromBase64(config.STEWARD_MASTER_KEY_PREVIOUS)
          : null,
      }),
      webhooks: realNetwork(config.WEBHOOK_ALLOW_PRIVATE_URLS),
      // A store command queues mail; the server's job runner sends it.
      mailer: mailerFor(config.STEWARD_SMTP_URL, config.STEWARD_MAIL_FROM),
      brand: { platform: config.STEWARD_PLATFORM_NAME, publicUrl: config.STEWARD_PUBLIC_URL },
      backups: {
        dir: config.STEWARD_BACKUP_DIR,
        keep: config.STEWARD_BACKUP_KEEP,
        store: config.STEWARD_KV_PATH,
      },
      // No command talks to Stripe.
      stripe: null,
    };
    try {
      await run(svc, Deno.args[0], Deno.args.slice(1));
    } finally {
      await svc.mailer.close();
      kv.close();
    }
  } catch (err) {
    if (
      !(err instanceof AppError || err instanceof ConfigError || err instanceof TypeError ||
        err instanceof MasterKeyError)
    ) {
      throw err;
    }
    console.error(`steward admin: ${err.message}`);
    Deno.exit(1);
  }
}

export { run as runAdminCommand };
