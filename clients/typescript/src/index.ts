// A typed client of the opshub API: paths, parameters, bodies and answers all come from
// schema.d.ts, which is generated from the hub's OpenAPI document (scripts/typescript-client).
import createFetchClient from "openapi-fetch";

import type { components, paths } from "./schema";

export type { components, operations, paths } from "./schema";

/** The API's error envelope: `{"error": {"code", "message", "details"?}}`. */
export type ApiError = components["schemas"]["Error"];

/** A client for one hub, authenticated with a tenant API key (ohk_…) or a user's JWT. */
export function createClient(baseUrl: string, apiKey: string) {
  return createFetchClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${apiKey}` },
  });
}

export type OpshubClient = ReturnType<typeof createClient>;
