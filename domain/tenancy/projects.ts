/**
 * Projects: a tenant's applications. API keys and signing keys hang on them. Deletion is soft
 * (status `deleted`, kept for the audit trail and the keys that name it); live projects are
 * counted per tenant for list totals.
 */
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import { getRecord, readCounter, type Table, type Versioned } from "../../kv/table.ts";
import { badRequest, conflict, notFound } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { createRecord, mergeMap, updateRecord } from "../audit/records.ts";
import { type Actor, type Services } from "../shared/services.ts";
import type { Tenant } from "./tenants.ts";
import { iso } from "../shared/time.ts";

export interface Project {
  id: string;
  tenant_id: string;
  name: string;
  status: "active" | "deleted";
  /** Origins a browser app of the project runs on (`https://app.example.com`). */
  allowed_origins: string[];
  /** Where sign-in flows may send users back to. */
  redirect_urls: string[];
  metadata: Record<string, string>;
  created_by: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export const projectTable = (tenantId: string): Table<Project> => ({
  key: (id) => keys.project(tenantId, id),
  counters: (p) => p.status === "active" ? [keys.projectCount(p.tenant_id)] : [],
  stamp: () => keys.tenantStamp(tenantId),
});

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** `https://Example.com:443/` → `https://example.com`; null when it is not an origin. */
export function normalizeOrigin(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  if (url.username || url.password || url.pathname !== "/" || /[?#]/.test(value)) return null;
  return url.origin;
}

/** An absolute https URL (http only on a loopback host), without a fragment; null otherwise. */
export function normalizeRedirect(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.username || url.password || url.hash) return null;
  if (url.protocol === "https:") return url.href;
  if (url.protocol === "http:" && LOOPBACK.has(url.hostname)) return url.href;
  return null;
}

function normalizeAll(
  values: string[],
  normalize: (v: string) => string | null,
  field: string,
): string[] {
  const out = new Set<string>();
  values.forEach((v, i) => {
    const n = normalize(v);
    if (!n) {
      throw badRequest(`${field}[${i}] is not valid`, [{ path: [field, i], message: "invalid" }]);
    }
    out.add(n);
  });
  return [...out];
}

export interface NewProject {
  name: string;
  allowed_origins?: string[];
  redirect_urls?: string[];
  metadata?: Record<string, string>;
}

const liveTenant = (tenant: Pick<Tenant, "status">) => {
  if (tenant.status === "deleted") throw conflict("the tenant is deleted");
};

export function createProject(
  svc: Services,
  actor: Actor,
  tenant: Tenant,
  input: NewProject,
): Promise<Versioned<Project>> {
  liveTenant(tenant);
  const now = svc.now();
  const project: Project = {
    id: newId("prj", now),
    tenant_id: tenant.id,
    name: input.name,
    status: "active",
    allowed_origins: normalizeAll(input.allowed_origins ?? [], normalizeOrigin, "allowed_origins"),
    redirect_urls: normalizeAll(input.redirect_urls ?? [], normalizeRedirect, "redirect_urls"),
    metadata: input.metadata ?? {},
    created_by: actor.id,
    created_at: iso(now),
    updated_at: iso(now),
    deleted_at: null,
  };
  return createRecord(svc, actor, projectTable(tenant.id), project, {
    action: "project.created",
    resource_type: "project",
    tenant_id: (p) => p.tenant_id,
    extra: (op) => op.set(keys.projectTenant(project.id), tenant.id),
  });
}

/** A live project of the tenant, or 404. */
export async function getProject(
  svc: Services,
  tenantId: string,
  id: string,
): Promise<Versioned<Project>> {
  const project = await getRecord(svc.kv, projectTable(tenantId), id);
  if (!project || project.value.status === "deleted") throw notFound("project");
  return project;
}

/**
 * The live project a request body names (`project_id`), as an entry to check in the commit
 * that uses it; 400 when the tenant has no such project.
 */
export async function requireProject(
  svc: Services,
  tenantId: string,
  id: string,
): Promise<Versioned<Project>> {
  const project = await getRecord(svc.kv, projectTable(tenantId), id);
  if (!project || project.value.status === "deleted") {
    throw badRequest("the tenant has no such project", [{
      path: ["project_id"],
      message: "not found",
    }]);
  }
  return project;
}

/** Live projects (or deleted ones, when asked), newest first; `total` for live ones. */
export async function listProjects(
  svc: Services,
  tenantId: string,
  filter: { status?: Project["status"] },
  page: PageRequest,
): Promise<Page<Project> & Counted> {
  const status = filter.status ?? "active";
  return await listCounted<Project>(
    svc.kv,
    {
      selector: { prefix: keys.projects(tenantId) },
      filter: (p) => p.status === status,
    },
    { ...page, reverse: true },
    status === "active" ? () => readCounter(svc.kv, keys.projectCount(tenantId)) : null,
  );
}

export interface ProjectPatch {
  name?: string;
  allowed_origins?: string[];
  redirect_urls?: string[];
  metadata?: Record<string, string | null>;
}

function changeProject(
  svc: Services,
  actor: Actor,
  tenantId: string,
  id: string,
  ifMatch: string | undefined,
  action: string,
  next: (p: Project) => Project,
): Promise<Versioned<Project>> {
  return updateRecord(svc, actor, projectTable(tenantId), {
    id,
    noun: "project",
    ifMatch,
    action,
    resource_type: "project",
    tenant_id: (p) => p.tenant_id,
    apply: (p) => {
      if (p.status === "deleted") throw notFound("project");
      const after = next(p);
      if (JSON.stringify(after) === JSON.stringify(p)) return p;
      return { ...after, updated_at: iso(svc.now()) };
    },
  });
}

export function updateProject(
  svc: Services,
  actor: Actor,
  tenant: Tenant,
  id: string,
  patch: ProjectPatch,
  ifMatch?: string,
): Promise<Versioned<Project>> {
  liveTenant(tenant);
  const origins = patch.allowed_origins &&
    normalizeAll(patch.allowed_origins, normalizeOrigin, "allowed_origins");
  const redirects = patch.redirect_urls &&
    normalizeAll(patch.redirect_urls, normalizeRedirect, "redirect_urls");
  return changeProject(svc, actor, tenant.id, id, ifMatch, "project.updated", (p) => ({
    ...p,
    name: patch.name ?? p.name,
    allowed_origins: origins ?? p.allowed_origins,
    redirect_urls: redirects ?? p.redirect_urls,
    metadata: patch.metadata ? mergeMap(p.metadata, patch.metadata) : p.metadata,
  }));
}

/** Deletes softly: the record stays for the audit trail; verify refuses the project's keys. */
export function deleteProject(
  svc: Services,
  actor: Actor,
  tenantId: string,
  id: string,
  ifMatch?: string,
): Promise<Versioned<Project>> {
  return changeProject(svc, actor, tenantId, id, ifMatch, "project.deleted", (p) => ({
    ...p,
    status: "deleted",
    deleted_at: iso(svc.now()),
  }));
}
