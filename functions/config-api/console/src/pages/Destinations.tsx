// Destinations: the list, `test` against the PSA, creating or editing one through a typed form
// per kind (destinationFields.ts: labels, required markers, write-only secret inputs never
// prefilled, the API's refusal shown on the field it names) and its routing (categories, least
// severity, board/queue and its per-category overrides, priority per severity for PSAs).
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, type S, api, message, ok } from "../api/client";
import { Badge, Card, Dialog, ErrorBox, Loading, Page, Select, useAsync } from "../components/ui";
import { CATEGORIES, SEVERITIES, useCan, words } from "../session";
import { CREDENTIALS, type Field, KINDS, KIND_NAMES, type Kind, PLACE_NAMES, PSA_KINDS, SETTINGS, type Values, body as body_, fieldOfProblem, settingsValues } from "./destinationFields";

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
      <Dialog open={!!editing} title={editing === "new" ? "New destination" : `Edit ${editing?.name ?? ""}`} onClose={() => setEditing(undefined)}>
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
        <dd>{KIND_NAMES[d.kind]}</dd>
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
            Edit…
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

/** A typed input of one settings or credentials field; the API's refusal of it is shown beside it. */
function FieldInput(props: { group: "settings" | "credentials"; field: Field; value: string; onInput: (v: string) => void; problem?: { field: string; message: string }; creating: boolean }) {
  const { group, field: f, problem } = props;
  const name = `${group}.${f.key}`;
  const error = problem && problem.field === name ? problem.message : undefined;
  const errorId = `${name.replace(".", "-")}-error`;
  const hintId = `${name.replace(".", "-")}-hint`;
  // Credentials are required when creating; when editing, blank keeps the stored ones.
  const required = !!f.required && (group === "settings" || props.creating);
  const describedBy = [f.hint ? hintId : "", error ? errorId : ""].filter(Boolean).join(" ") || undefined;
  const common = {
    name,
    required,
    "aria-invalid": error ? ("true" as const) : undefined,
    "aria-describedby": describedBy,
  };
  const label = (
    <span>
      {f.label}
      {required ? (
        <>
          {" "}
          <abbr title="required" class="required">*</abbr>
        </>
      ) : null}
      {f.secret ? <span class="muted small"> (write-only{props.creating ? "" : ", blank keeps the stored one"})</span> : null}
    </span>
  );
  return (
    <label class="field">
      {label}
      {f.options ? (
        <select {...common} value={props.value} onChange={(e) => props.onInput(e.currentTarget.value)}>
          <option value="">Default</option>
          {f.options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      ) : f.list ? (
        <textarea {...common} rows={3} value={props.value} onInput={(e) => props.onInput(e.currentTarget.value)} />
      ) : (
        <input
          {...common}
          type={f.secret ? "password" : (f.type ?? "text")}
          autoComplete={f.secret ? "new-password" : "off"}
          min={f.type === "number" ? 1 : undefined}
          value={props.value}
          onInput={(e) => props.onInput(e.currentTarget.value)}
        />
      )}
      {f.hint ? (
        <span id={hintId} class="muted small hint">
          {f.hint}
        </span>
      ) : null}
      {error ? (
        <span id={errorId} class="error small">
          {error}
        </span>
      ) : null}
    </label>
  );
}

function DestinationForm({ existing, onDone }: { existing: S["DestinationView"] | undefined; onDone: () => void }) {
  const creating = !existing;
  const [id, setId] = useState(existing?.id ?? "");
  const [name, setName] = useState(existing?.name ?? "");
  const [kind, setKind] = useState<Kind>(existing?.kind ?? "connectwise");
  const [settings, setSettings] = useState<Values>(() => settingsValues(existing?.settings));
  // Write-only: never prefilled from the server.
  const [credentials, setCredentials] = useState<Values>({});
  const [routing, setRouting] = useState<S["Routing"]>(existing?.routing ?? {});
  const [error, setError] = useState<string>();
  const [problem, setProblem] = useState<{ field: string; message: string }>();
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  // The field the API refused gets the focus (and scrolls into view in the dialog).
  useEffect(() => {
    if (problem) form.current?.querySelector<HTMLElement>(`[name="${problem.field}"]`)?.focus();
  }, [problem]);
  const psa = PSA_KINDS.includes(kind);
  const place = PLACE_NAMES[kind] ?? "Board / queue id";
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const credentialFields = CREDENTIALS[kind];
      const anyCredential = credentialFields.some((f) => (credentials[f.key] ?? "").trim());
      const body: S["DestinationRequest"] = {
        name: name.trim(),
        settings: body_(kind, SETTINGS[kind], settings) as S["DestinationSettings"],
        routing: psa ? routing : { ...routing, default_place: null, places: {}, priorities: {} },
        enabled: existing?.enabled ?? true,
      };
      // Kinds without credentials (e-mail) send none; editing sends them only when typed again.
      if (credentialFields.length && (creating || anyCredential)) body.credentials = body_(kind, credentialFields, credentials) as S["DestinationCredentials"];
      ok(await api.PUT("/v1/destinations/{destination_id}", { params: { path: { destination_id: id.trim() } }, body }));
      onDone();
    } catch (err) {
      const detail = message(err);
      const named = err instanceof ApiError ? fieldOfProblem(detail) : undefined;
      setProblem(named);
      setError(named ? `${named.field}: ${named.message}` : detail);
    } finally {
      setBusy(false);
    }
  };
  const setPriority = (s: S["Severity"], v: string) => {
    const priorities = { ...(routing.priorities ?? {}) };
    if (v) priorities[s] = v;
    else delete priorities[s];
    setRouting({ ...routing, priorities });
  };
  const setPlace = (c: S["Category"], v: string) => {
    const places = { ...(routing.places ?? {}) };
    if (v) places[c] = v;
    else delete places[c];
    setRouting({ ...routing, places });
  };
  const toggleCategory = (c: S["Category"], on: boolean) => {
    const categories = new Set(routing.categories ?? []);
    if (on) categories.add(c);
    else categories.delete(c);
    setRouting({ ...routing, categories: CATEGORIES.filter((x) => categories.has(x)) });
  };
  const fieldError = (field: string) => (problem && problem.field === field ? problem.message : undefined);
  return (
    <form class="stack" onSubmit={submit} aria-label="Destination" ref={form}>
      <p class="muted small">
        Fields marked <abbr title="required" class="required">*</abbr> are required.
      </p>
      {creating ? (
        <label class="field">
          <span>
            Id (lowercase letters, digits, -) <abbr title="required" class="required">*</abbr>
          </span>
          <input name="id" required pattern="[a-z](?:[a-z0-9]|-){0,39}" value={id} onInput={(e) => setId(e.currentTarget.value)} />
        </label>
      ) : null}
      <label class="field">
        <span>
          Name <abbr title="required" class="required">*</abbr>
        </span>
        <input name="name" required value={name} aria-invalid={fieldError("name") ? "true" : undefined} onInput={(e) => setName(e.currentTarget.value)} />
        {fieldError("name") ? <span class="error small">{fieldError("name")}</span> : null}
      </label>
      {creating ? (
        <Select
          label="Kind"
          name="kind"
          value={kind}
          options={KINDS}
          show={(k) => KIND_NAMES[k]}
          onChange={(v) => {
            setKind(v || "connectwise");
            setSettings({});
            setCredentials({});
            setProblem(undefined);
          }}
        />
      ) : null}
      {SETTINGS[kind].length ? (
        <fieldset>
          <legend>{KIND_NAMES[kind]} settings</legend>
          <div class="stack">
            {SETTINGS[kind].map((f) => (
              <FieldInput key={f.key} group="settings" field={f} value={settings[f.key] ?? ""} creating={creating} problem={problem}
                onInput={(v) => setSettings({ ...settings, [f.key]: v })} />
            ))}
          </div>
        </fieldset>
      ) : null}
      {CREDENTIALS[kind].length ? (
        <fieldset>
          <legend>Credentials (write-only{creating ? "" : "; leave blank to keep the stored ones"})</legend>
          <div class="stack">
            {CREDENTIALS[kind].map((f) => (
              <FieldInput key={f.key} group="credentials" field={f} value={credentials[f.key] ?? ""} creating={creating} problem={problem}
                onInput={(v) => setCredentials({ ...credentials, [f.key]: v })} />
            ))}
          </div>
        </fieldset>
      ) : null}
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
      {psa ? (
        <>
          <label class="field">
            <span>{place}</span>
            <input name="default_place" value={routing.default_place ?? ""} aria-invalid={fieldError("routing.default_place") ? "true" : undefined}
              onInput={(e) => setRouting({ ...routing, default_place: e.currentTarget.value || null })} />
            {fieldError("routing.default_place") ? <span class="error small">{fieldError("routing.default_place")}</span> : null}
          </label>
          <details>
            <summary>{place} per category</summary>
            <div class="choices inline">
              {CATEGORIES.map((c) => (
                <label class="field" key={c}>
                  <span>{words(c)}</span>
                  <input name={`place-${c}`} size={10} value={routing.places?.[c] ?? ""} onInput={(e) => setPlace(c, e.currentTarget.value)} />
                </label>
              ))}
            </div>
          </details>
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
        </>
      ) : null}
      <ErrorBox error={error} />
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          Save
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
