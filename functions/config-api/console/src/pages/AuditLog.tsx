// The audit log (owners and whoever holds audit:read): every configuration change, newest first.
import { useState } from "preact/hooks";
import { api, ok } from "../api/client";
import { ErrorBox, Loading, Page, useAsync } from "../components/ui";
import { when } from "../format";

export function AuditLog() {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const page = useAsync(async () => ok(await api.GET("/v1/audit-log", { params: { query: { limit: 100, cursor } } })), [cursor]);
  return (
    <Page title="Audit log">
      <ErrorBox error={page.error} />
      <Loading show={page.loading && !page.data} />
      <div class="table-wrap">
        <table aria-label="Audit log">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">What</th>
              <th scope="col">On</th>
            </tr>
          </thead>
          <tbody>
            {(page.data?.entries ?? []).map((e) => (
              <tr key={e.entry_id}>
                <td>{when(e.at)}</td>
                <td>{e.actor.name}</td>
                <td class="mono">{e.action}</td>
                <td>{e.target}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
          Newer
        </button>
        <button type="button" disabled={!page.data?.next_cursor} onClick={() => setCursors([...cursors, page.data?.next_cursor ?? undefined])}>
          Older
        </button>
      </nav>
    </Page>
  );
}
