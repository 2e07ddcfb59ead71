// How an integrator uses the client; type-checked in CI (tsc --noEmit), never run there.
import { createClient, type ApiError, type components } from "./index";

type Task = components["schemas"]["TaskRead"];
type Action = components["schemas"]["ActionRead"];

export async function submitReadAndListApprovals(
  baseUrl: string,
  apiKey: string,
): Promise<{ task: Task; pending: Action[] }> {
  const hub = createClient(baseUrl, apiKey);

  const submitted = await hub.POST("/v1/tasks", {
    body: { crew: "analytics", input: "Why did ROAS drop last week on Meta?" },
  });
  if (submitted.error) throw new Error(describe(submitted.error));

  const read = await hub.GET("/v1/tasks/{task_id}", {
    params: { path: { task_id: submitted.data.id } },
  });
  if (read.error) throw new Error(describe(read.error));

  const approvals = await hub.GET("/v1/actions", {
    params: { query: { status: "pending", limit: 20 } },
  });
  if (approvals.error) throw new Error(describe(approvals.error));

  return { task: read.data, pending: approvals.data.items };
}

function describe(error: ApiError): string {
  return `${error.error.code}: ${error.error.message}`;
}
