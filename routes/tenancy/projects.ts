/** A tenant's projects (applications): API keys and signing keys hang on them. */
import { z } from "@hono/zod-openapi";
import {
  createProject,
  deleteProject,
  getProject,
  listProjects,
  normalizeOrigin,
  normalizeRedirect,
  type Project,
  updateProject,
} from "../../domain/tenancy/projects.ts";
import { actorOf, ifMatch, okList, okRecord } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import {
  envelope,
  idOf,
  jsonBody,
  jsonResponse,
  listEnvelope,
  Metadata,
  MetadataPatch,
  PageQuery,
  TenantParams,
  Text,
} from "../schemas.ts";

const Origin = z.string().max(300).refine((v) => normalizeOrigin(v) !== null, {
  message: "must be an origin: http(s)://host[:port], no path, query or fragment",
}).openapi({ example: "https://app.example.com" });
const RedirectUrl = z.string().max(2000).refine((v) => normalizeRedirect(v) !== null, {
  message: "must be an absolute https URL without a fragment (http only for localhost)",
}).openapi({ example: "https://app.example.com/callback" });
const Origins = z.array(Origin).max(50);
const RedirectUrls = z.array(RedirectUrl).max(50);

const ProjectName = Text(200).openapi({ example: "Storefront" });

const ProjectSchema = z.object({
  id: z.string().openapi({ example: "prj_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  tenant_id: z.string().openapi({ example: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  name: z.string().openapi({ example: "Storefront" }),
  status: z.enum(["active", "deleted"]),
  allowed_origins: z.array(z.string()).openapi({ example: ["https://app.example.com"] }),
  redirect_urls: z.array(z.string()).openapi({ example: ["https://app.example.com/callback"] }),
  metadata: z.record(z.string(), z.string()).openapi({ example: { team: "web" } }),
  created_by: z.string().openapi({ example: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  created_at: z.string().openapi({ example: "2026-01-12T10:00:00.000Z" }),
  updated_at: z.string().openapi({ example: "2026-01-12T10:00:00.000Z" }),
  deleted_at: z.string().nullable().openapi({ example: null }),
}).openapi("Project");

const CreateProject = z.strictObject({
  name: ProjectName,
  allowed_origins: Origins.optional(),
  redirect_urls: RedirectUrls.optional(),
  metadata: Metadata.optional(),
}).openapi("CreateProject", {
  example: {
    name: "Storefront",
    allowed_origins: ["https://app.example.com"],
    redirect_urls: ["https://app.example.com/callback"],
    metadata: { team: "web" },
  },
});

const UpdateProject = z.strictObject({
  name: ProjectName.optional(),
  allowed_origins: Origins.optional().openapi({ description: "Replaces the list." }),
  redirect_urls: RedirectUrls.optional().openapi({ description: "Replaces the list." }),
  metadata: MetadataPatch.optional().openapi({ example: { team: "checkout", legacy_id: null } }),
}).openapi("UpdateProject", {
  example: {
    allowed_origins: ["https://app.example.com", "https://shop.example.com"],
    metadata: { team: "checkout", legacy_id: null },
  },
});

const ProjectParams = TenantParams.extend({
  id: idOf("prj").openapi({ param: { name: "id", in: "path" } }),
});

const ListQuery = z.strictObject({
  ...PageQuery,
  status: z.enum(["active", "deleted"]).optional().openapi({
    description: "Live projects unless `deleted` is asked for.",
  }),
});

const view = (p: Project) => p;
const one = envelope(ProjectSchema);
const tags = ["Projects"];

export function projectRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/projects",
      tags,
      summary: "List the tenant's projects (newest first)",
      request: { params: TenantParams, query: ListQuery },
      responses: { 200: jsonResponse(listEnvelope(ProjectSchema), "A page of projects.") },
    }),
    async (c) => {
      const { status, ...page } = c.req.valid("query");
      const found = await listProjects(c.get("svc"), c.get("tenant").value.id, { status }, page);
      return okList(c, found, page.limit, view);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/projects",
      tags,
      summary: "Create a project",
      description:
        "Origins are stored lower-cased and deduplicated (`https://App.example.com:443` " +
        "→ `https://app.example.com`).",
      request: { params: TenantParams, body: jsonBody(CreateProject) },
      responses: { 201: jsonResponse(one, "Created.") },
    }),
    async (c) => {
      const tenant = c.get("tenant").value;
      const project = await createProject(c.get("svc"), actorOf(c), tenant, c.req.valid("json"));
      c.header("Location", `/v1/tenants/${tenant.id}/projects/${project.value.id}`);
      return okRecord(c, project, view, 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/projects/{id}",
      tags,
      summary: "Get a project",
      request: { params: ProjectParams },
      responses: { 200: jsonResponse(one, "The project; `ETag` is its version.") },
    }),
    async (c) =>
      okRecord(
        c,
        await getProject(c.get("svc"), c.get("tenant").value.id, c.req.valid("param").id),
        view,
      ),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/tenants/{tenant}/projects/{id}",
      tags,
      summary: "Update a project",
      description: "Metadata is merged (null removes a key); the URL lists are replaced.",
      request: { params: ProjectParams, body: jsonBody(UpdateProject) },
      responses: { 200: jsonResponse(one, "Updated.") },
    }),
    async (c) => {
      const project = await updateProject(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value,
        c.req.valid("param").id,
        c.req.valid("json"),
        ifMatch(c),
      );
      return okRecord(c, project, view);
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/tenants/{tenant}/projects/{id}",
      tags,
      summary: "Delete a project (soft; its API keys stop verifying)",
      request: { params: ProjectParams },
      responses: { 200: jsonResponse(one, "The deleted project.") },
    }),
    async (c) => {
      const project = await deleteProject(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value.id,
        c.req.valid("param").id,
        ifMatch(c),
      );
      return okRecord(c, project, view);
    },
  );

  return app;
}
