// Admin relationships: Partner Center's security view and more — bucket counts, the
// per-customer table (sortable, filterable, CSV), the recommendation, and removal as
// multi-select → preview (with its consequences) → confirm, then each customer's progress.
import { useEffect, useState } from "preact/hooks";
import { type S, api, message, ok } from "../api/client";
import { Badge, Card, Dialog, ErrorBox, Loading, Page, Select, useAsync } from "../components/ui";
import { when } from "../format";
import { useCan, words } from "../session";

const BUCKETS: S["InactivityBucket"][] = ["recent", "30_to_60_days", "60_to_90_days", "over_90_days"];
const RECOMMENDATIONS: S["Recommendation"][] = ["remove", "least_privilege", "fix_access_assignment"];
const SORTS = ["customer", "days_inactive", "days_enabled", "ends_at"] as const;

export function Relationships() {
  const canRemove = useCan("relationships:remove");
  const [bucket, setBucket] = useState<S["InactivityBucket"] | "">("");
  const [recommendation, setRecommendation] = useState<S["Recommendation"] | "">("");
  const [customer, setCustomer] = useState("");
  const [sort, setSort] = useState<string>("customer");
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [preview, setPreview] = useState<S["PreviewResponse"]>();
  const [error, setError] = useState<string>();
  const [watching, setWatching] = useState(false);
  const query = { bucket: bucket || undefined, recommendation: recommendation || undefined, customer: customer || undefined, sort, limit: 100 };
  const report = useAsync(async () => ok(await api.GET("/v1/admin-relationships", { params: { query } })), [bucket, recommendation, customer, sort]);
  const sum = report.data?.summary;
  const rows = report.data?.relationships ?? [];
  const toggleSort = (key: (typeof SORTS)[number]) => setSort(sort === key ? `-${key}` : key);
  const sortState = (key: string) => (sort === key ? "ascending" : sort === `-${key}` ? "descending" : undefined);
  const download = async () => {
    try {
      const r = await api.GET("/v1/admin-relationships/export", { params: { query: { ...query, limit: undefined } }, parseAs: "text" });
      const text = ok(r) as unknown as string;
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      a.download = "admin-relationships.csv";
      a.click();
      URL.revokeObjectURL(a.href);
    } catch (e) {
      setError(message(e));
    }
  };
  const askPreview = async () => {
    try {
      setPreview(ok(await api.POST("/v1/admin-relationships/removal-previews", { body: { relationship_ids: [...selected] } })));
      setError(undefined);
    } catch (e) {
      setError(message(e));
    }
  };
  const confirm = async () => {
    if (!preview) return;
    try {
      ok(await api.POST("/v1/admin-relationships/removals", { body: { token: preview.token } }));
      setPreview(undefined);
      setSelected(new Set());
      setWatching(true);
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <Page
      title="Admin relationships"
      actions={
        <button type="button" onClick={download}>
          Download CSV
        </button>
      }
    >
      <ErrorBox error={report.error ?? error} />
      {sum ? (
        <ul class="tiles" aria-label="Summary">
          <li>
            <strong>{sum.customers_with_access}</strong> customers with access
          </li>
          <li>
            <strong>{sum.with_global_administrator}</strong> with Global Administrator
          </li>
          <li>
            <strong>{sum.inactive_30_to_60_days}</strong> inactive 30–60 days
          </li>
          <li>
            <strong>{sum.inactive_60_to_90_days}</strong> inactive 60–90 days
          </li>
          <li>
            <strong>{sum.inactive_over_90_days}</strong> inactive over 90 days
          </li>
          <li>
            <strong>{sum.without_working_assignment}</strong> without a working assignment
          </li>
          <li>
            <strong>{sum.dap}</strong> DAP
          </li>
          <li>
            <strong>{sum.established_last_7_days}</strong> new in 7 days
          </li>
        </ul>
      ) : null}
      {report.data?.last_read ? (
        <p class="muted small">
          Partner tenant read {when(report.data.last_read.at)}
          {report.data.last_read.error ? ` — failed: ${report.data.last_read.error}` : ""}
        </p>
      ) : null}
      <form class="filters" aria-label="Filter relationships" onSubmit={(e) => e.preventDefault()}>
        <Select label="Inactivity" name="bucket" any="Any" value={bucket} options={BUCKETS} onChange={setBucket} show={words} />
        <Select label="Recommendation" name="recommendation" any="Any" value={recommendation} options={RECOMMENDATIONS} onChange={setRecommendation} show={words} />
        <label class="field">
          <span>Customer</span>
          <input type="search" name="customer" value={customer} onChange={(e) => setCustomer(e.currentTarget.value.trim())} />
        </label>
      </form>
      <Loading show={report.loading && !report.data} />
      {canRemove ? (
        <div class="row">
          <button type="button" class="danger" disabled={selected.size === 0 || selected.size > 50} onClick={askPreview}>
            Preview removal of {selected.size} selected…
          </button>
        </div>
      ) : null}
      <div class="table-wrap">
        <table aria-label="Relationships">
          <thead>
            <tr>
              {canRemove ? (
                <th scope="col">
                  <input type="checkbox" aria-label="Select every row" checked={rows.length > 0 && rows.every((r) => selected.has(r.relationship_id))}
                    onChange={(e) => setSelected(e.currentTarget.checked ? new Set(rows.map((r) => r.relationship_id)) : new Set())} />
                </th>
              ) : null}
              <th scope="col" aria-sort={sortState("customer")}>
                <button type="button" class="link" onClick={() => toggleSort("customer")}>
                  Customer
                </button>
              </th>
              <th scope="col">Relationship</th>
              <th scope="col">Roles</th>
              <th scope="col" aria-sort={sortState("days_inactive")}>
                <button type="button" class="link" onClick={() => toggleSort("days_inactive")}>
                  Days inactive
                </button>
              </th>
              <th scope="col" aria-sort={sortState("days_enabled")}>
                <button type="button" class="link" onClick={() => toggleSort("days_enabled")}>
                  Days enabled
                </button>
              </th>
              <th scope="col" aria-sort={sortState("ends_at")}>
                <button type="button" class="link" onClick={() => toggleSort("ends_at")}>
                  Ends
                </button>
              </th>
              <th scope="col">Recommendation</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.relationship_id}>
                {canRemove ? (
                  <td>
                    <input type="checkbox" aria-label={`Select ${r.customer_name}: ${r.relationship_name}`} checked={selected.has(r.relationship_id)}
                      onChange={(e) => {
                        const next = new Set(selected);
                        if (e.currentTarget.checked) next.add(r.relationship_id);
                        else next.delete(r.relationship_id);
                        setSelected(next);
                      }} />
                  </td>
                ) : null}
                <td>{r.customer_name}</td>
                <td>
                  {r.relationship_name} <span class="muted small">({r.kind}, {r.status})</span>
                </td>
                <td class="small">
                  {r.includes_global_administrator ? <Badge kind="high">Global Administrator</Badge> : null} {r.roles.length} role(s)
                </td>
                <td class="num">{r.days_inactive}</td>
                <td class="num">{r.days_enabled_shown ?? "—"}</td>
                <td>{r.ends_at ? when(r.ends_at) : "—"}</td>
                <td>{r.recommendations.map((x) => <Badge kind={x} key={x}>{words(x)}</Badge>)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Dialog open={!!preview} title="Confirm removal" onClose={() => setPreview(undefined)}>
        {preview ? <Preview preview={preview} onConfirm={confirm} onCancel={() => setPreview(undefined)} /> : null}
      </Dialog>
      <Removals watching={watching} />
    </Page>
  );
}

function Preview({ preview, onConfirm, onCancel }: { preview: S["PreviewResponse"]; onConfirm: () => void; onCancel: () => void }) {
  return (
    <div class="stack">
      <p>
        Confirming removes <strong>{preview.removable}</strong> of {preview.items.length} relationship(s). This cannot be undone: the customer must approve a new
        relationship to give access back. The preview expires {when(preview.expires_at)}.
      </p>
      <ul class="plain preview">
        {preview.items.map((i) => (
          <li key={i.relationship_id}>
            <strong>{i.customer_name}</strong> — {i.relationship_name} {i.removable ? null : <Badge kind="failed">not removable: {i.refusal}</Badge>}
            {i.roles.length ? <div class="small">Roles removed: {i.roles.join(", ")}</div> : null}
            {i.groups_losing_access.length ? <div class="small">Groups losing access: {i.groups_losing_access.join(", ")}</div> : null}
            <ul class="small">
              {i.consequences.map((c) => (
                <li key={c}>{c}</li>
              ))}
            </ul>
          </li>
        ))}
      </ul>
      <div class="row">
        <button type="button" class="danger" disabled={preview.removable === 0} onClick={onConfirm}>
          Remove {preview.removable} relationship(s)
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

function Removals({ watching }: { watching: boolean }) {
  const removals = useAsync(async () => ok(await api.GET("/v1/admin-relationships/removals")).removals, [watching]);
  const pending = (removals.data ?? []).some((r) => r.status === "requested" || r.status === "terminating");
  useEffect(() => {
    if (!pending) return;
    const t = setTimeout(removals.reload, 2000);
    return () => clearTimeout(t);
  }, [removals.data, pending]);
  if (!removals.data?.length) return null;
  return (
    <Card title="Removals" wide>
      <div class="table-wrap">
        <table aria-label="Removals">
          <thead>
            <tr>
              <th scope="col">Customer</th>
              <th scope="col">Relationship</th>
              <th scope="col">Status</th>
              <th scope="col">By</th>
              <th scope="col">Requested</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {removals.data.map((r) => (
              <tr key={`${r.relationship_id}-${r.requested_at}`}>
                <td>{r.customer_name}</td>
                <td>{r.relationship_name}</td>
                <td>
                  <Badge kind={r.status}>{r.status}</Badge>
                </td>
                <td>{r.requested_by}</td>
                <td>{when(r.requested_at)}</td>
                <td>{r.error ?? (r.completed_at ? `done ${when(r.completed_at)}` : "in progress")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {pending ? <p class="muted small" role="status">Terminations in progress; this list refreshes itself.</p> : null}
    </Card>
  );
}
