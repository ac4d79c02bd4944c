// One tenant: its registration, its access test per capability (pass or fail, Microsoft's
// error and the fix; "Run again" for a role that may) and its offboarding (a confirmation
// dialog with the retention in days, then its phase and what was removed).
import { useState } from "preact/hooks";
import { ApiError, type S, api, message, ok } from "../api/client";
import { Badge, Card, Dialog, ErrorBox, Loading, Page, useAsync } from "../components/ui";
import { when } from "../format";
import { href } from "../router";
import { useCan, words } from "../session";

const CAPABILITY: Record<S["Capability"], string> = {
  token: "Token for the MSP app",
  management_activity: "Management Activity subscriptions",
  security_alerts: "Microsoft Graph security alerts",
  licences: "Licences",
  sign_ins: "Sign-in logs",
};

/** `null` when the API answers 404 (nothing of that kind yet), the data otherwise. */
async function orNone<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T | null> {
  const result = await call;
  return result.response.status === 404 ? null : ok(result);
}

export function TenantPage({ id }: { id: string }) {
  const tenant = useAsync(async () => ok(await api.GET("/v1/tenants/{tenant_id}", { params: { path: { tenant_id: id } } })), [id]);
  return (
    <Page title={tenant.data ? tenant.data.name : "Tenant"}>
      <p>
        <a href={href(["tenants"])}>← Tenants</a>
      </p>
      <ErrorBox error={tenant.error} />
      <Loading show={tenant.loading && !tenant.data} />
      {tenant.data ? (
        <div class="grid">
          <Card title="Registration">
            <dl class="facts">
              <dt>Tenant id</dt>
              <dd class="mono small">{tenant.data.tenant_id}</dd>
              <dt>Domains</dt>
              <dd>{tenant.data.domains.join(", ") || "—"}</dd>
              <dt>Microsoft 365</dt>
              <dd>{tenant.data.m365_credentials_set ? "credentials set" : "the MSP app (by consent)"}</dd>
              <dt>Registered</dt>
              <dd>{when(tenant.data.created_at)}</dd>
            </dl>
          </Card>
          <Offboarding id={id} />
        </div>
      ) : null}
      {tenant.data ? <AccessTest id={id} /> : null}
    </Page>
  );
}

function AccessTest({ id }: { id: string }) {
  const canRun = useCan("config:write");
  const last = useAsync(() => orNone(api.GET("/v1/tenants/{tenant_id}/access-test", { params: { path: { tenant_id: id } } })), [id]);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string>();
  const [fresh, setFresh] = useState<S["AccessTest"]>();
  const test = fresh ?? last.data;
  const run = async () => {
    setRunning(true);
    setError(undefined);
    try {
      setFresh(ok(await api.POST("/v1/tenants/{tenant_id}/access-test", { params: { path: { tenant_id: id } } })));
    } catch (err) {
      setError(err instanceof ApiError && err.status === 409 ? `${err.message} (send the customer a consent link instead)` : message(err));
    } finally {
      setRunning(false);
    }
  };
  return (
    <section aria-labelledby="access-title">
      <div class="page-head">
        <h2 id="access-title">Access test</h2>
        {canRun ? (
          <button type="button" onClick={run} disabled={running} aria-busy={running}>
            {running ? "Testing…" : test ? "Run again" : "Run the access test"}
          </button>
        ) : null}
      </div>
      <ErrorBox error={last.error ?? error} />
      <Loading show={last.loading && last.data === undefined} />
      {test === null ? <p class="muted">Not tested yet.</p> : null}
      {test ? (
        <>
          <p role="status" data-ran-at={test.ran_at}>
            {test.passed ? <Badge kind="ok">every capability works</Badge> : <Badge kind="failed">some capabilities fail</Badge>} <span class="muted">tested {when(test.ran_at)}</span>
          </p>
          <div class="table-wrap">
            <table aria-label="Access test">
              <thead>
                <tr>
                  <th scope="col">Capability</th>
                  <th scope="col">Result</th>
                  <th scope="col">Microsoft's answer</th>
                  <th scope="col">The fix</th>
                </tr>
              </thead>
              <tbody>
                {test.checks.map((c) => (
                  <tr key={c.capability} data-capability={c.capability}>
                    <td>{CAPABILITY[c.capability] ?? words(c.capability)}</td>
                    <td>{c.passed ? <Badge kind="ok">pass</Badge> : <Badge kind="failed">fail</Badge>}</td>
                    <td class="small">{c.error ?? "—"}</td>
                    <td class="small">{c.fix ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}

function Offboarding({ id }: { id: string }) {
  const canOffboard = useCan("tenants:offboard");
  const status = useAsync(() => orNone(api.GET("/v1/tenants/{tenant_id}/offboarding", { params: { path: { tenant_id: id } } })), [id]);
  const [asking, setAsking] = useState(false);
  const [days, setDays] = useState("30");
  const [error, setError] = useState<string>();
  const confirm = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      ok(await api.POST("/v1/tenants/{tenant_id}/offboarding", { params: { path: { tenant_id: id } }, body: { retention_days: Number(days) } }));
      setAsking(false);
      status.reload();
    } catch (err) {
      setError(message(err));
    }
  };
  const o = status.data;
  return (
    <Card title="Offboarding">
      <ErrorBox error={status.error} />
      <Loading show={status.loading && o === undefined} />
      {o === null ? <p class="muted">Watched: not offboarded.</p> : null}
      {o ? (
        <dl class="facts" data-testid="offboarding">
          <dt>Phase</dt>
          <dd>
            <Badge kind={o.phase === "purged" ? "ok" : "requested"}>{o.phase}</Badge>
          </dd>
          <dt>Requested</dt>
          <dd>
            {when(o.requested_at)} by {o.requested_by}
          </dd>
          <dt>Data deleted after</dt>
          <dd>
            {when(o.purge_after)} ({o.retention_days} days)
          </dd>
          <dt>Subscriptions</dt>
          <dd>{o.subscriptions_stopped ? "stopped" : (o.subscriptions_note ?? "not stopped yet")}</dd>
          <dt>Credentials</dt>
          <dd>{o.credentials_deleted ? "deleted" : "not deleted yet"}</dd>
          <dt>Removed</dt>
          <dd>
            {Object.entries(o.removed).length
              ? Object.entries(o.removed)
                  .map(([kind, n]) => `${words(kind)}: ${n}`)
                  .join(", ")
              : "nothing yet"}
          </dd>
          {o.completed_at ? (
            <>
              <dt>Completed</dt>
              <dd>{when(o.completed_at)}</dd>
            </>
          ) : null}
        </dl>
      ) : null}
      {canOffboard && o === null ? (
        <div class="row">
          <button type="button" class="danger" onClick={() => setAsking(true)}>
            Offboard this tenant…
          </button>
        </div>
      ) : null}
      <Dialog open={asking} title="Offboard this tenant" onClose={() => setAsking(false)}>
        <form class="stack" onSubmit={confirm}>
          <p>
            Vigil stops watching the tenant at once: no more polling, Microsoft's subscriptions stopped, its credentials and company links removed. After the retention
            every alert, event and ledger of it is deleted. This cannot be undone.
          </p>
          <label class="field">
            <span>Keep its data for (days, 0 to 365)</span>
            <input name="retention_days" type="number" min={0} max={365} required value={days} onInput={(e) => setDays(e.currentTarget.value)} />
          </label>
          <ErrorBox error={error} />
          <div class="row">
            <button type="submit" class="danger">
              Offboard
            </button>
            <button type="button" class="ghost" onClick={() => setAsking(false)}>
              Cancel
            </button>
          </div>
        </form>
      </Dialog>
    </Card>
  );
}
