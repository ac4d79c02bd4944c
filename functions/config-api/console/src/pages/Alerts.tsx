// The alert queue: filters (status, severity, category, tenant, policy, time) kept in the
// address, and the API's time-ordered cursor paging (newest change first).
import { useState } from "preact/hooks";
import { type S, api, ok } from "../api/client";
import { Badge, ErrorBox, Loading, Page, Select, useAsync } from "../components/ui";
import { ago, toIso, toLocalInput, when } from "../format";
import { href, navigate } from "../router";
import { SEVERITIES, STATUSES, useCan, useMe, visibleCategories, words } from "../session";

const PAGE_SIZE = 50;
const FILTERS = ["status", "severity", "category", "tenant", "policy", "from", "to"] as const;
type Filter = (typeof FILTERS)[number];

export function Alerts({ query }: { query: URLSearchParams }) {
  const me = useMe();
  const canConfig = useCan("config:read");
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) ?? ""])) as Record<Filter, string>;
  // Cursors of the pages before this one (the first page has none).
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const key = FILTERS.map((f) => filters[f]).join("|");
  const [lastKey, setLastKey] = useState(key);
  if (key !== lastKey) {
    setLastKey(key);
    setCursors([undefined]);
  }
  const page = useAsync(
    async () =>
      ok(
        await api.GET("/v1/alerts", {
          params: {
            query: {
              limit: PAGE_SIZE,
              cursor,
              status: (filters.status || undefined) as S["AlertStatus"] | undefined,
              severity: (filters.severity || undefined) as S["Severity"] | undefined,
              category: (filters.category || undefined) as S["Category"] | undefined,
              tenant: filters.tenant || undefined,
              policy: filters.policy || undefined,
              from: filters.from || undefined,
              to: filters.to || undefined,
            },
          },
        }),
      ),
    [key, cursor],
  );
  // The filters' choices are read once the first page is on screen: with thousands of tenants
  // that list is the larger answer, and the queue must not wait behind it.
  const optionsWanted = canConfig && page.data !== undefined;
  const tenants = useAsync(async () => (optionsWanted ? ok(await api.GET("/v1/tenants")).tenants : undefined), [optionsWanted]);
  const policies = useAsync(async () => (optionsWanted ? ok(await api.GET("/v1/policies")).policies : undefined), [optionsWanted]);
  const set = (f: Filter, v: string) => navigate(["alerts"], { ...filters, [f]: v || undefined });
  return (
    <Page title="Alerts">
      <form class="filters" aria-label="Filter alerts" onSubmit={(e) => e.preventDefault()}>
        <Select label="Status" name="status" any="Any" value={filters.status as S["AlertStatus"] | ""} options={STATUSES} onChange={(v) => set("status", v)} show={words} />
        <Select label="Severity" name="severity" any="Any" value={filters.severity as S["Severity"] | ""} options={SEVERITIES} onChange={(v) => set("severity", v)} />
        <Select label="Category" name="category" any="Any" value={filters.category as S["Category"] | ""} options={visibleCategories(me)} onChange={(v) => set("category", v)} show={words} />
        {canConfig && tenants.data ? (
          <Select label="Tenant" name="tenant" any="Any" value={filters.tenant} options={tenants.data.map((t) => t.tenant_id)} onChange={(v) => set("tenant", v)}
            show={(id) => tenants.data?.find((t) => t.tenant_id === id)?.name ?? id} />
        ) : (
          <label class="field">
            <span>Tenant id</span>
            <input name="tenant" value={filters.tenant} onChange={(e) => set("tenant", e.currentTarget.value.trim())} />
          </label>
        )}
        {canConfig && policies.data ? (
          <Select label="Policy" name="policy" any="Any" value={filters.policy} options={policies.data.map((p) => p.policy.id)} onChange={(v) => set("policy", v)}
            show={(id) => policies.data?.find((p) => p.policy.id === id)?.policy.name ?? id} />
        ) : (
          <label class="field">
            <span>Policy id</span>
            <input name="policy" value={filters.policy} onChange={(e) => set("policy", e.currentTarget.value.trim())} />
          </label>
        )}
        <label class="field">
          <span>Changed from</span>
          <input type="datetime-local" name="from" value={toLocalInput(filters.from)} onChange={(e) => set("from", toIso(e.currentTarget.value) ?? "")} />
        </label>
        <label class="field">
          <span>to</span>
          <input type="datetime-local" name="to" value={toLocalInput(filters.to)} onChange={(e) => set("to", toIso(e.currentTarget.value) ?? "")} />
        </label>
        <a class="button ghost" href={href(["alerts"])}>
          Clear
        </a>
      </form>
      <ErrorBox error={page.error} />
      <Loading show={page.loading && !page.data} />
      {page.data ? (
        <>
          <div class="table-wrap">
            <table class="alerts" aria-label="Alerts" aria-busy={page.loading}>
              <thead>
                <tr>
                  <th scope="col">Severity</th>
                  <th scope="col">Alert</th>
                  <th scope="col">Tenant</th>
                  <th scope="col">Category</th>
                  <th scope="col">Status</th>
                  <th scope="col">Hits</th>
                  <th scope="col">Changed</th>
                </tr>
              </thead>
              <tbody>
                {page.data.alerts.map((a) => (
                  <tr key={a.id} data-category={a.category}>
                    <td>
                      <Badge kind={a.severity}>{a.severity}</Badge>
                    </td>
                    <td>
                      <a href={href(["alerts", a.id])}>{a.title}</a>
                      <div class="muted small">{a.policy_name}</div>
                    </td>
                    <td>{a.tenant_name}</td>
                    <td>{words(a.category)}</td>
                    <td>
                      <Badge kind={a.status}>{words(a.status)}</Badge>
                    </td>
                    <td class="num">{a.hit_count}</td>
                    <td title={when(a.updated_at)}>{ago(a.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {page.data.alerts.length === 0 ? <p class="muted">No alerts match.</p> : null}
          <nav class="pager" aria-label="Pages">
            <button type="button" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
              Newer
            </button>
            <span class="muted">Page {cursors.length}</span>
            <button type="button" disabled={!page.data.next_cursor} onClick={() => setCursors([...cursors, page.data?.next_cursor ?? undefined])}>
              Older
            </button>
          </nav>
        </>
      ) : null}
    </Page>
  );
}
