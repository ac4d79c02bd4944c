// The overview: tenants by health, alerts per day for 30 days by severity, open alerts by
// category and each destination's last delivery.
import { type S, api, ok } from "../api/client";
import { type Day, DailyChart, lastDays } from "../components/DailyChart";
import { Badge, Card, ErrorBox, Loading, Page, useAsync } from "../components/ui";
import { ago } from "../format";
import { href } from "../router";
import { useCan, useMe, visibleCategories, words } from "../session";

/** Pages of 100 alerts read for the chart (the newest 5,000 changes of 30 days). */
const CHART_PAGES = 50;
/** Tenants whose stream health the overview reads (one request each). */
const HEALTH_TENANTS = 60;

async function alertsOf30Days(): Promise<{ alerts: S["Alert"][]; complete: boolean }> {
  const from = new Date(Date.now() - 30 * 86400_000).toISOString();
  const alerts: S["Alert"][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < CHART_PAGES; i++) {
    const page = ok(await api.GET("/v1/alerts", { params: { query: { from, limit: 100, cursor } } }));
    alerts.push(...page.alerts);
    if (!page.next_cursor) return { alerts, complete: true };
    cursor = page.next_cursor;
  }
  return { alerts, complete: false };
}

export function Overview() {
  const me = useMe();
  const canConfig = useCan("config:read");
  const recent = useAsync(alertsOf30Days, []);
  const days: Day[] = lastDays(30).map((day) => ({ day, counts: { High: 0, Medium: 0, Low: 0, Informational: 0 } }));
  const open = new Map<string, number>();
  for (const a of recent.data?.alerts ?? []) {
    const d = days.find((x) => x.day === a.created_at.slice(0, 10));
    if (d) d.counts[a.severity] += 1;
    if (a.status !== "Resolved") open.set(a.category, (open.get(a.category) ?? 0) + 1);
  }
  return (
    <Page title="Overview">
      <div class="grid">
        {canConfig ? <TenantHealth /> : null}
        <Card title="Alerts per day (30 days)" wide>
          <ErrorBox error={recent.error} />
          <Loading show={recent.loading} />
          {recent.data ? <DailyChart days={days} /> : null}
          {recent.data && !recent.data.complete ? <p class="muted small">The newest {recent.data.alerts.length} alerts are counted.</p> : null}
        </Card>
        <Card title="Open alerts by category">
          <ul class="bars" aria-label="Open alerts by category">
            {visibleCategories(me).map((c) => (
              <li key={c}>
                <a href={href(["alerts"], { category: c, status: "New" })}>{words(c)}</a>
                <span class="num">{open.get(c) ?? 0}</span>
              </li>
            ))}
          </ul>
        </Card>
        {canConfig ? <LastDeliveries alerts={recent.data?.alerts} /> : null}
      </div>
    </Page>
  );
}

interface Health {
  tenant: S["TenantView"];
  status: "connected" | "consent lost" | "failing" | "not polled yet" | "no credentials";
  coverage: number | null;
}

async function tenantHealth(): Promise<{ rows: Health[]; total: number; msp: number | null }> {
  const tenants = ok(await api.GET("/v1/tenants")).tenants;
  const some = tenants.slice(0, HEALTH_TENANTS);
  const rows: Health[] = [];
  // A few at a time: the overview must not flood the API.
  for (let i = 0; i < some.length; i += 6) {
    const batch = await Promise.all(
      some.slice(i, i + 6).map(async (tenant): Promise<Health> => {
        if (!tenant.m365_credentials_set) return { tenant, status: "no credentials", coverage: null };
        const streams = ok(await api.GET("/v1/tenants/{tenant_id}/streams", { params: { path: { tenant_id: tenant.tenant_id } } })).streams;
        const statuses = streams.map((s) => s.status);
        const status: Health["status"] = statuses.includes("connection problem")
          ? "consent lost"
          : statuses.includes("failing")
            ? "failing"
            : statuses.every((s) => s === "not polled yet")
              ? "not polled yet"
              : "connected";
        return { tenant, status, coverage: null };
      }),
    );
    rows.push(...batch);
  }
  // Coverage of the last 24 hours as the API defines it (GET /v1/coverage): the share of the
  // window in which every enabled stream was covered, lost intervals excluded.
  const coverage = ok(await api.GET("/v1/coverage", { params: { query: { limit: 500 } } }));
  const byTenant = new Map(coverage.tenants.map((t) => [t.tenant_id, t.coverage_24h]));
  for (const r of rows) {
    const figure = byTenant.get(r.tenant.tenant_id);
    r.coverage = figure === undefined || figure === null ? null : Math.round(figure * 100);
  }
  return { rows, total: tenants.length, msp: coverage.msp_coverage_24h ?? null };
}

function TenantHealth() {
  const health = useAsync(tenantHealth, []);
  const by = new Map<string, number>();
  for (const r of health.data?.rows ?? []) by.set(r.status, (by.get(r.status) ?? 0) + 1);
  return (
    <Card title="Tenants by health" wide>
      <ErrorBox error={health.error} />
      <Loading show={health.loading} />
      {health.data ? (
        <>
          <p>
            Coverage of the last 24 h across every tenant:{" "}
            <strong>{health.data.msp === null ? "—" : `${Math.round(health.data.msp * 100)} %`}</strong>
          </p>
          <p class="counts">
            {[...by.entries()].map(([k, v]) => (
              <span key={k}>
                <Badge kind={k.replace(/ /g, "-")}>{k}</Badge> {v}
              </span>
            ))}
          </p>
          <div class="table-wrap">
            <table aria-label="Tenant health">
              <thead>
                <tr>
                  <th scope="col">Tenant</th>
                  <th scope="col">Health</th>
                  <th scope="col">Coverage (24 h)</th>
                </tr>
              </thead>
              <tbody>
                {health.data.rows.map((r) => (
                  <tr key={r.tenant.tenant_id}>
                    <td>{r.tenant.name}</td>
                    <td>
                      <Badge kind={r.status.replace(/ /g, "-")}>{r.status}</Badge>
                    </td>
                    <td class="num">{r.coverage === null ? "—" : `${r.coverage} %`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {health.data.total > health.data.rows.length ? (
            <p class="muted small">
              The first {health.data.rows.length} of {health.data.total} tenants; see <a href={href(["tenants"])}>Tenants</a>.
            </p>
          ) : null}
        </>
      ) : null}
    </Card>
  );
}

async function lastDeliveries(alerts: S["Alert"][]): Promise<{ destinations: S["DestinationView"][]; last: Map<string, { alert: S["Alert"]; delivery: S["DeliveryView"] }> }> {
  const destinations = ok(await api.GET("/v1/destinations")).destinations;
  const last = new Map<string, { alert: S["Alert"]; delivery: S["DeliveryView"] }>();
  for (const a of alerts.slice(0, 10)) {
    if (last.size === destinations.length) break;
    const view = ok(await api.GET("/v1/alerts/{alert_id}", { params: { path: { alert_id: a.id } } }));
    for (const d of view.deliveries) if (!last.has(d.destination)) last.set(d.destination, { alert: a, delivery: d });
  }
  return { destinations, last };
}

function LastDeliveries({ alerts }: { alerts: S["Alert"][] | undefined }) {
  const data = useAsync(async () => (alerts ? lastDeliveries(alerts) : undefined), [alerts]);
  return (
    <Card title="Destinations">
      <ErrorBox error={data.error} />
      <ul class="plain">
        {(data.data?.destinations ?? []).map((d) => {
          const l = data.data?.last.get(d.id);
          return (
            <li key={d.id}>
              <strong>{d.name}</strong> <span class="muted">({d.kind})</span>
              {!d.enabled ? " · disabled" : ""}
              <div class="small">
                {l ? (
                  <>
                    last: {l.delivery.ticket ? `ticket #${l.delivery.ticket}` : l.delivery.held_until_linked ? "held until linked" : l.delivery.messages_posted ? "message posted" : "pending"}{" "}
                    for <a href={href(["alerts", l.alert.id])}>{l.alert.title}</a> ({ago(l.alert.updated_at)})
                  </>
                ) : (
                  <span class="muted">no delivery among the newest alerts</span>
                )}
              </div>
            </li>
          );
        })}
      </ul>
    </Card>
  );
}
