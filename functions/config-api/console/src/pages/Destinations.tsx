// Destinations: the list, `test` against the PSA, creating one (a form for ConnectWise Manage,
// the settings and credentials as JSON for the other kinds) and its routing (categories, least
// severity, board/queue per category, priority per severity). Credentials are write-only.
import { useState } from "preact/hooks";
import { type S, api, message, ok } from "../api/client";
import { Badge, Card, Dialog, ErrorBox, Loading, Page, Select, useAsync } from "../components/ui";
import { CATEGORIES, SEVERITIES, useCan, words } from "../session";

export function Destinations() {
  const canWrite = useCan("config:write");
  const list = useAsync(async () => ok(await api.GET("/v1/destinations")).destinations, []);
  const [editing, setEditing] = useState<S["DestinationView"] | "new">();
  return (
    <Page
      title="Destinations"
      actions={
        canWrite ? (
          <button type="button" class="primary" onClick={() => setEditing("new")}>
            New destination
          </button>
        ) : null
      }
    >
      <ErrorBox error={list.error} />
      <Loading show={list.loading && !list.data} />
      <div class="grid">
        {(list.data ?? []).map((d) => (
          <DestinationCard key={d.id} destination={d} canWrite={canWrite} onEdit={() => setEditing(d)} />
        ))}
      </div>
      {list.data && list.data.length === 0 ? <p class="muted">No destination yet.</p> : null}
      <Dialog open={!!editing} title={editing === "new" ? "New destination" : `Routing of ${editing?.name ?? ""}`} onClose={() => setEditing(undefined)}>
        {editing ? <DestinationForm existing={editing === "new" ? undefined : editing} onDone={() => (setEditing(undefined), list.reload())} /> : null}
      </Dialog>
    </Page>
  );
}

function DestinationCard({ destination: d, canWrite, onEdit }: { destination: S["DestinationView"]; canWrite: boolean; onEdit: () => void }) {
  const [test, setTest] = useState<S["DestinationTest"]>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const r = d.routing;
  const run = async () => {
    setBusy(true);
    try {
      setTest(ok(await api.POST("/v1/destinations/{destination_id}/test", { params: { path: { destination_id: d.id } } })));
      setError(undefined);
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title={d.name}>
      <dl class="facts">
        <dt>Id</dt>
        <dd class="mono">{d.id}</dd>
        <dt>Kind</dt>
        <dd>{d.kind}</dd>
        <dt>State</dt>
        <dd>{d.enabled ? "enabled" : "disabled"}{d.credentials_set ? ", credentials stored" : ", no credentials"}</dd>
        <dt>Categories</dt>
        <dd>{r.categories?.length ? r.categories.map(words).join(", ") : "every category"}</dd>
        <dt>Least severity</dt>
        <dd>{r.min_severity ?? "any"}</dd>
        <dt>Board / queue</dt>
        <dd>
          {r.default_place ?? "—"}
          {r.places && Object.keys(r.places).length ? ` (${Object.entries(r.places).map(([c, p]) => `${words(c)}: ${p}`).join(", ")})` : ""}
        </dd>
        <dt>Priorities</dt>
        <dd>{r.priorities && Object.keys(r.priorities).length ? Object.entries(r.priorities).map(([s, p]) => `${s} ${p}`).join(", ") : "PSA default"}</dd>
      </dl>
      {canWrite ? (
        <div class="row">
          <button type="button" onClick={run} disabled={busy}>
            Test
          </button>
          <button type="button" onClick={onEdit}>
            Edit routing…
          </button>
        </div>
      ) : null}
      <ErrorBox error={error} />
      {test ? (
        <div role="status" class="test-result">
          <Badge kind={test.ok ? "ok" : "failed"}>{test.ok ? "Test passed" : "Test failed"}</Badge>
          <ul>
            {test.problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </div>
      ) : null}
    </Card>
  );
}

const KINDS: S["DestinationKind"][] = ["connectwise", "autotask", "halopsa", "tigerpaw", "teams", "slack", "webhook", "email"];

function DestinationForm({ existing, onDone }: { existing: S["DestinationView"] | undefined; onDone: () => void }) {
  const [id, setId] = useState(existing?.id ?? "");
  const [name, setName] = useState(existing?.name ?? "");
  const [kind, setKind] = useState<S["DestinationKind"]>(existing?.kind ?? "connectwise");
  const [apiRoot, setApiRoot] = useState(existing?.settings.kind === "connectwise" ? existing.settings.api_root : "");
  const [cw, setCw] = useState({ company_id: "", public_key: "", private_key: "", client_id: "" });
  const [settingsJson, setSettingsJson] = useState(existing ? JSON.stringify(existing.settings, null, 2) : "");
  const [credentialsJson, setCredentialsJson] = useState("");
  const [routing, setRouting] = useState<S["Routing"]>(existing?.routing ?? {});
  const [error, setError] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      let settings: S["DestinationSettings"];
      let credentials: S["DestinationCredentials"] | null = null;
      if (existing) {
        settings = existing.settings;
      } else if (kind === "connectwise") {
        settings = { kind: "connectwise", api_root: apiRoot.trim() };
        credentials = { kind: "connectwise", ...cw };
      } else {
        settings = JSON.parse(settingsJson || `{"kind":"${kind}"}`) as S["DestinationSettings"];
        credentials = JSON.parse(credentialsJson || "null") as S["DestinationCredentials"] | null;
      }
      const body: S["DestinationRequest"] = { name: name.trim(), settings, routing, enabled: existing?.enabled ?? true };
      if (credentials) body.credentials = credentials;
      ok(await api.PUT("/v1/destinations/{destination_id}", { params: { path: { destination_id: id.trim() } }, body }));
      onDone();
    } catch (err) {
      setError(err instanceof SyntaxError ? `Not JSON: ${err.message}` : message(err));
    }
  };
  const setPriority = (s: S["Severity"], v: string) => {
    const priorities = { ...(routing.priorities ?? {}) };
    if (v) priorities[s] = v;
    else delete priorities[s];
    setRouting({ ...routing, priorities });
  };
  const toggleCategory = (c: S["Category"], on: boolean) => {
    const categories = new Set(routing.categories ?? []);
    if (on) categories.add(c);
    else categories.delete(c);
    setRouting({ ...routing, categories: CATEGORIES.filter((x) => categories.has(x)) });
  };
  return (
    <form class="stack" onSubmit={submit} aria-label="Destination">
      {existing ? null : (
        <>
          <label class="field">
            <span>Id (lowercase letters, digits, -)</span>
            <input name="id" required pattern="[a-z](?:[a-z0-9]|-){0,39}" value={id} onInput={(e) => setId(e.currentTarget.value)} />
          </label>
          <label class="field">
            <span>Name</span>
            <input name="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <Select label="Kind" name="kind" value={kind} options={KINDS} onChange={(v) => setKind(v || "connectwise")} />
          {kind === "connectwise" ? (
            <fieldset>
              <legend>ConnectWise Manage</legend>
              <label class="field">
                <span>API root</span>
                <input name="api_root" required value={apiRoot} onInput={(e) => setApiRoot(e.currentTarget.value)} />
              </label>
              {(["company_id", "public_key", "private_key", "client_id"] as const).map((k) => (
                <label class="field" key={k}>
                  <span>{words(k)}</span>
                  <input name={k} required type={k === "private_key" ? "password" : "text"} autoComplete="off" value={cw[k]} onInput={(e) => setCw({ ...cw, [k]: e.currentTarget.value })} />
                </label>
              ))}
            </fieldset>
          ) : (
            <>
              <label class="field">
                <span>Settings (JSON)</span>
                <textarea name="settings" rows={4} value={settingsJson} placeholder={`{"kind": "${kind}"}`} onInput={(e) => setSettingsJson(e.currentTarget.value)} />
              </label>
              <label class="field">
                <span>Credentials (JSON, write-only)</span>
                <textarea name="credentials" rows={4} value={credentialsJson} onInput={(e) => setCredentialsJson(e.currentTarget.value)} />
              </label>
            </>
          )}
        </>
      )}
      <fieldset>
        <legend>Routing: categories (none ticked: every category)</legend>
        <div class="choices inline">
          {CATEGORIES.map((c) => (
            <label key={c}>
              <input type="checkbox" checked={routing.categories?.includes(c) ?? false} onChange={(e) => toggleCategory(c, e.currentTarget.checked)} /> {words(c)}
            </label>
          ))}
        </div>
      </fieldset>
      <Select label="Least severity" name="min_severity" any="Any" value={routing.min_severity ?? ""} options={SEVERITIES}
        onChange={(v) => setRouting({ ...routing, min_severity: v || null })} />
      <label class="field">
        <span>Board / queue id</span>
        <input name="default_place" value={routing.default_place ?? ""} onInput={(e) => setRouting({ ...routing, default_place: e.currentTarget.value || null })} />
      </label>
      <fieldset>
        <legend>Priority id per severity</legend>
        <div class="choices inline">
          {SEVERITIES.map((s) => (
            <label class="field" key={s}>
              <span>{s}</span>
              <input name={`priority-${s}`} size={4} value={routing.priorities?.[s] ?? ""} onInput={(e) => setPriority(s, e.currentTarget.value)} />
            </label>
          ))}
        </div>
      </fieldset>
      <ErrorBox error={error} />
      <div class="row">
        <button type="submit" class="primary">
          Save
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
