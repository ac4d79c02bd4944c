// Policies: the catalogue with a per-tenant switch, an editor for a policy's definition (the
// condition tree as JSON; the API's validation error is shown on the field it names) and
// "test against records" (the policy run over pasted audit records, nothing stored).
import { useEffect, useState } from "preact/hooks";
import { ApiError, type S, api, message, ok } from "../api/client";
import { Badge, Card, ErrorBox, Loading, Page, Select, useAsync } from "../components/ui";
import { useCan, words } from "../session";

export function Policies() {
  const canWrite = useCan("config:write");
  const policies = useAsync(async () => ok(await api.GET("/v1/policies")).policies, []);
  const tenants = useAsync(async () => ok(await api.GET("/v1/tenants")).tenants, []);
  const [tenant, setTenant] = useState("");
  const [switched, setSwitched] = useState<Record<string, boolean>>({});
  // The chosen tenant's own switches (a policy without one follows its own `enabled`).
  const tenantSwitches = useAsync(
    async () =>
      tenant ? ok(await api.GET("/v1/tenants/{tenant_id}/policies", { params: { path: { tenant_id: tenant } } })).switches : [],
    [tenant],
  );
  const [editing, setEditing] = useState<S["PolicyView"]>();
  const [error, setError] = useState<string>();
  const flip = async (p: S["PolicyView"], enabled: boolean) => {
    try {
      ok(await api.PUT("/v1/tenants/{tenant_id}/policies/{policy_id}", { params: { path: { tenant_id: tenant, policy_id: p.policy.id } }, body: { enabled } }));
      setSwitched({ ...switched, [`${tenant}/${p.policy.id}`]: enabled });
      setError(undefined);
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <Page title="Policies">
      <ErrorBox error={policies.error ?? error} />
      <Loading show={policies.loading && !policies.data} />
      {canWrite ? (
        <div class="filters">
          <Select label="Switches for tenant" name="tenant" any="Choose a tenant" value={tenant} options={(tenants.data ?? []).map((t) => t.tenant_id)} onChange={setTenant}
            show={(id) => tenants.data?.find((t) => t.tenant_id === id)?.name ?? id} />
        </div>
      ) : null}
      <div class="table-wrap">
        <table aria-label="Policies">
          <thead>
            <tr>
              <th scope="col">Policy</th>
              <th scope="col">Category</th>
              <th scope="col">Severity</th>
              <th scope="col">Source</th>
              {canWrite && tenant ? <th scope="col">On for this tenant</th> : null}
              {canWrite ? <th scope="col">Edit</th> : null}
            </tr>
          </thead>
          <tbody>
            {(policies.data ?? []).map((p) => {
              const key = `${tenant}/${p.policy.id}`;
              const own = tenantSwitches.data?.find((x) => x.policy_id === p.policy.id)?.enabled;
              const on = switched[key] ?? own ?? p.policy.enabled ?? true;
              return (
                <tr key={p.policy.id}>
                  <td>
                    {p.policy.name}
                    <div class="muted small mono">{p.policy.id}</div>
                  </td>
                  <td>{words(p.policy.category)}</td>
                  <td>
                    <Badge kind={p.policy.severity}>{p.policy.severity}</Badge>
                  </td>
                  <td>{p.source}</td>
                  {canWrite && tenant ? (
                    <td>
                      <label class="switch">
                        <input type="checkbox" role="switch" checked={on} onChange={(e) => flip(p, e.currentTarget.checked)} aria-label={`${p.policy.name} on for this tenant`} />
                        {on ? "on" : "off"}
                      </label>
                    </td>
                  ) : null}
                  {canWrite ? (
                    <td>
                      <button type="button" class="small" onClick={() => setEditing(p)}>
                        Edit
                      </button>
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {editing ? <Editor key={editing.policy.id} view={editing} tenant={tenant} onSaved={() => (policies.reload(), setEditing(undefined))} /> : null}
    </Page>
  );
}

function Editor({ view, tenant, onSaved }: { view: S["PolicyView"]; tenant: string; onSaved: () => void }) {
  const [text, setText] = useState(JSON.stringify(view.policy, null, 2));
  const [records, setRecords] = useState("[]");
  const [fieldError, setFieldError] = useState<string>();
  const [result, setResult] = useState<S["PolicyTestResult"]>();
  const [testError, setTestError] = useState<string>();
  const parse = (): S["PolicyDefinition"] | undefined => {
    try {
      return JSON.parse(text) as S["PolicyDefinition"];
    } catch (e) {
      setFieldError(`Not JSON: ${message(e)}`);
      return undefined;
    }
  };
  const save = async () => {
    const policy = parse();
    if (!policy) return;
    try {
      ok(await api.PUT("/v1/policies/{policy_id}", { params: { path: { policy_id: view.policy.id } }, body: policy }));
      setFieldError(undefined);
      onSaved();
    } catch (e) {
      setFieldError(e instanceof ApiError ? `${e.status}: ${e.message}` : message(e));
    }
  };
  const test = async () => {
    const policy = parse();
    if (!policy) return;
    try {
      const parsed = JSON.parse(records) as unknown[];
      setResult(ok(await api.POST("/v1/policies/test", { body: { policy, records: parsed } })));
      setTestError(undefined);
    } catch (e) {
      setTestError(message(e));
    }
  };
  return (
    <Card title={`Edit ${view.policy.name}`} wide>
      <div class="stack">
        <label class="field">
          <span>Definition (JSON: activity, conditions, trigger, aggregation…)</span>
          <textarea name="definition" rows={16} class="mono" value={text} aria-invalid={!!fieldError} aria-describedby="definition-error"
            onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <p id="definition-error" class="error" role={fieldError ? "alert" : undefined} hidden={!fieldError}>
          {fieldError}
        </p>
        <div class="row">
          <button type="button" class="primary" onClick={save}>
            Save policy
          </button>
        </div>
        <label class="field">
          <span>Audit records to test against (JSON array, as Microsoft sends them)</span>
          <textarea name="records" rows={6} class="mono" value={records} onInput={(e) => setRecords(e.currentTarget.value)} />
        </label>
        <button type="button" onClick={test}>
          Test against records
        </button>
        <ErrorBox error={testError} />
        {result ? (
          <p role="status">
            {result.records} record(s): {result.matches.length} match(es), {result.alerts.length} alert(s), {result.rejected.length} rejected
            {result.note ? ` — ${result.note}` : ""}
          </p>
        ) : null}
        <Replay policyId={view.policy.id} tenant={tenant} />
      </div>
    </Card>
  );
}

/** Replays the saved policy, in shadow, over the chosen tenant's last hours of audit content. */
function Replay({ policyId, tenant }: { policyId: string; tenant: string }) {
  const [hours, setHours] = useState("24");
  const [replay, setReplay] = useState<S["ReplayView"]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    if (!replay || replay.status === "done" || replay.status === "failed") return;
    const t = setTimeout(async () => {
      try {
        setReplay(ok(await api.GET("/v1/tenants/{tenant_id}/replays/{replay_id}", { params: { path: { tenant_id: replay.tenant_id, replay_id: replay.replay_id } } })));
      } catch (e) {
        setError(message(e));
      }
    }, 2000);
    return () => clearTimeout(t);
  }, [replay]);
  const start = async () => {
    try {
      setReplay(ok(await api.POST("/v1/tenants/{tenant_id}/replays", { params: { path: { tenant_id: tenant } }, body: { policy_id: policyId, hours: Number(hours) } })));
      setError(undefined);
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <fieldset>
      <legend>Replay over a tenant's past audit content (nothing raised or ticketed)</legend>
      {tenant ? null : <p class="muted">Choose a tenant above to replay the saved policy over its content.</p>}
      <div class="row">
        <label class="field">
          <span>Hours back (1–168)</span>
          <input name="hours" type="number" min="1" max="168" value={hours} onInput={(e) => setHours(e.currentTarget.value)} />
        </label>
        <button type="button" disabled={!tenant} onClick={start}>
          Replay
        </button>
      </div>
      <ErrorBox error={error ?? replay?.error ?? undefined} />
      {replay ? (
        <div role="status">
          <p>
            Replay {replay.status}: {replay.records_scanned} record(s) scanned, {replay.matches} match(es), {replay.alerts_total} would-be alert(s)
          </p>
          <ul class="plain small">
            {replay.alerts.map((a) => (
              <li key={a.alert_id}>
                <Badge kind={a.severity}>{a.severity}</Badge> {a.title} ({a.hit_count} hit(s))
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </fieldset>
  );
}
