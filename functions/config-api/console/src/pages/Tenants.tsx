// Tenants: the list (its first page from one request, the rest loaded behind it; filtered and
// paged in the browser, so 2,000 tenants stay quick), each
// tenant's company per destination picked from the PSA's companies (search as you type), and
// bulk mapping of unlinked tenants by name similarity with a confirmation.
import { useEffect, useState } from "preact/hooks";
import { type S, api, message, ok } from "../api/client";
import { Dialog, ErrorBox, Loading, Page, Select, useAsync } from "../components/ui";
import { bestMatch } from "../similarity";
import { href } from "../router";
import { useCan } from "../session";

const ROWS = 100;

/** Tenants a request asks for: the first page is what the screen shows, the rest follow. */
const FIRST = ROWS;
const REST = 1000;

/**
 * The MSP's tenants, a page at a time: the first page (one request of ROWS tenants) is on
 * screen at once, the rest load behind it a large page at a time (search and paging cover what
 * has arrived; `complete` says when it all has).
 */
function useTenants() {
  const [state, setState] = useState<{ data?: S["TenantView"][]; error?: string; complete: boolean }>({ complete: false });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    (async () => {
      let all: S["TenantView"][] = [];
      let cursor: string | undefined;
      do {
        const page = ok(await api.GET("/v1/tenants", { params: { query: { limit: all.length ? REST : FIRST, cursor } } }));
        if (!live) return;
        all = all.concat(page.tenants);
        cursor = page.next_cursor ?? undefined;
        setState({ data: all, complete: !cursor });
      } while (cursor);
    })().catch((e: unknown) => live && setState((s) => ({ ...s, error: message(e), complete: true })));
    return () => {
      live = false;
    };
  }, [tick]);
  return { ...state, loading: !state.complete, reload: () => setTick((t) => t + 1) };
}

export function Tenants() {
  const canWrite = useCan("config:write");
  const tenants = useTenants();
  const destinations = useAsync(async () => ok(await api.GET("/v1/destinations")).destinations.filter((d) => isPsa(d.kind)), []);
  const [filter, setFilter] = useState("");
  const [page, setPage] = useState(0);
  const [linking, setLinking] = useState<S["TenantView"]>();
  const [bulk, setBulk] = useState(false);
  const [registering, setRegistering] = useState(false);
  const [credentials, setCredentials] = useState<S["TenantView"]>();
  const f = filter.trim().toLowerCase();
  const shown = (tenants.data ?? []).filter((t) => !f || t.name.toLowerCase().includes(f) || t.tenant_id.includes(f) || t.domains.some((d) => d.includes(f)));
  const pages = Math.max(1, Math.ceil(shown.length / ROWS));
  const dests = destinations.data ?? [];
  return (
    <Page
      title="Tenants"
      actions={
        canWrite ? (
          <>
            <button type="button" onClick={() => setRegistering(true)}>
              Register a tenant
            </button>
            <button type="button" onClick={() => setBulk(true)} disabled={!dests.length}>
              Bulk map by name…
            </button>
          </>
        ) : null
      }
    >
      <div class="filters">
        <label class="field">
          <span>Search tenants</span>
          <input type="search" name="filter" value={filter} onInput={(e) => (setFilter(e.currentTarget.value), setPage(0))} />
        </label>
        <p class="muted" role="status">
          {shown.length} of {tenants.data?.length ?? 0}
          {tenants.data && !tenants.complete ? " (loading the rest…)" : ""}
        </p>
      </div>
      <ErrorBox error={tenants.error} />
      <Loading show={tenants.loading && !tenants.data} />
      <div class="table-wrap">
        <table aria-label="Tenants">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Tenant id</th>
              <th scope="col">Microsoft 365</th>
              {dests.map((d) => (
                <th scope="col" key={d.id}>
                  {d.name}
                </th>
              ))}
              {canWrite ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {shown.slice(page * ROWS, (page + 1) * ROWS).map((t) => (
              <tr key={t.tenant_id}>
                <td>
                  <a href={href(["tenants", t.tenant_id])}>{t.name}</a>
                  <div class="muted small">{t.domains.join(", ")}</div>
                </td>
                <td class="mono small">{t.tenant_id}</td>
                <td>{t.m365_credentials_set ? "credentials set" : "no credentials"}</td>
                {dests.map((d) => (
                  <td key={d.id}>{t.company_links[d.id] ?? <span class="muted">not linked</span>}</td>
                ))}
                {canWrite ? (
                  <td>
                    <div class="row">
                      <button type="button" class="small" onClick={() => setLinking(t)} disabled={!dests.length} aria-label={`Link ${t.name} to a company`}>
                        Link…
                      </button>
                      <button type="button" class="small" onClick={() => setCredentials(t)} aria-label={`Microsoft 365 credentials of ${t.name}`}>
                        Credentials…
                      </button>
                    </div>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
          Previous
        </button>
        <span class="muted">
          Page {page + 1} of {pages}
        </span>
        <button type="button" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)}>
          Next
        </button>
      </nav>
      <Dialog open={!!linking} title={`Link ${linking?.name ?? ""}`} onClose={() => setLinking(undefined)}>
        {linking ? <LinkForm tenant={linking} destinations={dests} onDone={() => (setLinking(undefined), tenants.reload())} /> : null}
      </Dialog>
      <Dialog open={bulk} title="Bulk map tenants by name" onClose={() => setBulk(false)}>
        <BulkMap destinations={dests} onDone={() => (setBulk(false), tenants.reload())} />
      </Dialog>
      <Dialog open={!!credentials} title={`Microsoft 365 credentials of ${credentials?.name ?? ""}`} onClose={() => setCredentials(undefined)}>
        {credentials ? <Credentials tenant={credentials} onDone={() => (setCredentials(undefined), tenants.reload())} /> : null}
      </Dialog>
      <Dialog open={registering} title="Register a tenant" onClose={() => setRegistering(false)}>
        <Register onDone={() => (setRegistering(false), tenants.reload())} />
      </Dialog>
    </Page>
  );
}

export function isPsa(kind: S["DestinationKind"]): boolean {
  return kind === "connectwise" || kind === "autotask" || kind === "halopsa" || kind === "tigerpaw";
}

/** Companies of a destination matching `search`, asked as the user types (debounced). */
function useCompanies(destination: string, search: string) {
  const [debounced, setDebounced] = useState(search);
  useEffect(() => {
    const t = setTimeout(() => setDebounced(search), 250);
    return () => clearTimeout(t);
  }, [search]);
  return useAsync(
    async () =>
      destination
        ? ok(await api.GET("/v1/destinations/{destination_id}/companies", { params: { path: { destination_id: destination }, query: { search: debounced || undefined } } })).items
        : [],
    [destination, debounced],
  );
}

function LinkForm({ tenant, destinations, onDone }: { tenant: S["TenantView"]; destinations: S["DestinationView"][]; onDone: () => void }) {
  const [destination, setDestination] = useState(destinations[0]?.id ?? "");
  const [search, setSearch] = useState(tenant.name.split(" ")[0] ?? "");
  const [picked, setPicked] = useState<string>(tenant.company_links[destination] ?? "");
  const [error, setError] = useState<string>();
  const companies = useCompanies(destination, search);
  const save = async (company: string | null) => {
    try {
      ok(
        await api.PUT("/v1/tenants/{tenant_id}/destinations/{destination_id}/company", {
          params: { path: { tenant_id: tenant.tenant_id, destination_id: destination } },
          body: { company },
        }),
      );
      onDone();
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <form class="stack" onSubmit={(e) => (e.preventDefault(), picked && save(picked))}>
      <Select label="Destination" name="destination" value={destination} options={destinations.map((d) => d.id)} onChange={(v) => setDestination(v)}
        show={(id) => destinations.find((d) => d.id === id)?.name ?? id} />
      <label class="field">
        <span>Search companies</span>
        <input type="search" name="company-search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} aria-controls="company-results" />
      </label>
      <ErrorBox error={companies.error} />
      <fieldset id="company-results" class="choices" aria-busy={companies.loading}>
        <legend>Companies</legend>
        {(companies.data ?? []).map((c) => (
          <label key={c.id}>
            <input type="radio" name="company" value={c.id} checked={picked === c.id} onChange={() => setPicked(c.id)} /> {c.name} <span class="muted small">#{c.id}</span>
          </label>
        ))}
        {companies.data && companies.data.length === 0 ? <p class="muted">No company matches.</p> : null}
      </fieldset>
      <ErrorBox error={error} />
      <div class="row">
        <button type="submit" class="primary" disabled={!picked}>
          Link
        </button>
        {tenant.company_links[destination] ? (
          <button type="button" onClick={() => save(null)}>
            Unlink
          </button>
        ) : null}
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

interface Proposal {
  tenant: S["TenantView"];
  company: S["LookupItem"];
  score: number;
  chosen: boolean;
  result?: string;
}

function BulkMap({ destinations, onDone }: { destinations: S["DestinationView"][]; onDone: () => void }) {
  const [destination, setDestination] = useState(destinations[0]?.id ?? "");
  const [threshold, setThreshold] = useState(0.6);
  const [proposals, setProposals] = useState<Proposal[]>();
  const [error, setError] = useState<string>();
  const [running, setRunning] = useState(false);
  const propose = async () => {
    try {
      const companies = ok(await api.GET("/v1/destinations/{destination_id}/companies", { params: { path: { destination_id: destination } } })).items;
      // The list as it is now (a link made a moment ago counts), not as the page last read it.
      const current = ok(await api.GET("/v1/tenants")).tenants;
      const unlinked = current.filter((t) => !t.company_links[destination]);
      const found: Proposal[] = [];
      for (const t of unlinked) {
        const m = bestMatch(t.name, companies, (c) => c.name, threshold);
        if (m) found.push({ tenant: t, company: m.item, score: m.score, chosen: true });
      }
      setProposals(found);
      setError(undefined);
    } catch (e) {
      setError(message(e));
    }
  };
  const confirm = async () => {
    if (!proposals) return;
    setRunning(true);
    const next = [...proposals];
    for (const [i, p] of next.entries()) {
      if (!p.chosen || p.result) continue;
      try {
        ok(
          await api.PUT("/v1/tenants/{tenant_id}/destinations/{destination_id}/company", {
            params: { path: { tenant_id: p.tenant.tenant_id, destination_id: destination } },
            body: { company: p.company.id },
          }),
        );
        next[i] = { ...p, result: "linked" };
      } catch (e) {
        next[i] = { ...p, result: message(e) };
      }
      setProposals([...next]);
    }
    setRunning(false);
  };
  const done = proposals?.some((p) => p.result);
  return (
    <div class="stack">
      <Select label="Destination" name="bulk-destination" value={destination} options={destinations.map((d) => d.id)} onChange={(v) => (setDestination(v), setProposals(undefined))}
        show={(id) => destinations.find((d) => d.id === id)?.name ?? id} />
      <label class="field">
        <span>Least similarity ({Math.round(threshold * 100)} %)</span>
        <input type="range" min="0.3" max="1" step="0.05" value={threshold} onInput={(e) => setThreshold(Number(e.currentTarget.value))} />
      </label>
      <button type="button" onClick={propose}>
        Propose links for unlinked tenants
      </button>
      <ErrorBox error={error} />
      {proposals ? (
        <>
          <p role="status">{proposals.length} proposal(s). Untick any you do not want, then confirm.</p>
          <div class="table-wrap">
            <table aria-label="Proposed links">
              <thead>
                <tr>
                  <th scope="col">Link</th>
                  <th scope="col">Tenant</th>
                  <th scope="col">Company</th>
                  <th scope="col">Similarity</th>
                  <th scope="col">Result</th>
                </tr>
              </thead>
              <tbody>
                {proposals.map((p, i) => (
                  <tr key={p.tenant.tenant_id}>
                    <td>
                      <input type="checkbox" aria-label={`Link ${p.tenant.name} to ${p.company.name}`} checked={p.chosen} disabled={!!p.result}
                        onChange={(e) => setProposals(proposals.map((q, j) => (j === i ? { ...q, chosen: e.currentTarget.checked } : q)))} />
                    </td>
                    <td>{p.tenant.name}</td>
                    <td>
                      {p.company.name} <span class="muted small">#{p.company.id}</span>
                    </td>
                    <td class="num">{Math.round(p.score * 100)} %</td>
                    <td>{p.result ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
      <div class="row">
        <button type="button" class="primary" disabled={!proposals?.some((p) => p.chosen && !p.result) || running} onClick={confirm}>
          Confirm {proposals?.filter((p) => p.chosen && !p.result).length ?? 0} link(s)
        </button>
        <button type="button" onClick={onDone}>
          {done ? "Close" : "Cancel"}
        </button>
      </div>
    </div>
  );
}

function Register({ onDone }: { onDone: () => void }) {
  const [tenantId, setTenantId] = useState("");
  const [name, setName] = useState("");
  const [domains, setDomains] = useState("");
  const [error, setError] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      ok(
        await api.POST("/v1/tenants", {
          body: { tenant_id: tenantId.trim(), name: name.trim(), domains: domains.split(/[\s,]+/).filter(Boolean) },
        }),
      );
      onDone();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <form class="stack" onSubmit={submit}>
      <p class="muted">Registers the customer's tenant; its Microsoft 365 app credentials are set through the API (write-only).</p>
      <label class="field">
        <span>Tenant id (GUID)</span>
        <input name="tenant_id" required value={tenantId} onInput={(e) => setTenantId(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>Name</span>
        <input name="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>Mail domains</span>
        <input name="domains" value={domains} onInput={(e) => setDomains(e.currentTarget.value)} />
      </label>
      <ErrorBox error={error} />
      <div class="row">
        <button type="submit" class="primary">
          Register
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}


/** The tenant's Microsoft 365 app credentials: write-only (the API never shows them back). */
function Credentials({ tenant, onDone }: { tenant: S["TenantView"]; onDone: () => void }) {
  const [clientId, setClientId] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      ok(
        await api.PUT("/v1/tenants/{tenant_id}/m365-credentials", {
          params: { path: { tenant_id: tenant.tenant_id } },
          body: { client_id: clientId.trim(), client_secret: secret },
        }),
      );
      onDone();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <form class="stack" onSubmit={submit}>
      <p class="muted">
        {tenant.m365_credentials_set ? "Credentials are stored; saving replaces them." : "No credentials yet: Vigil cannot read this tenant's audit log."} They are
        write-only: nobody can read them back.
      </p>
      <label class="field">
        <span>Application (client) id</span>
        <input name="client_id" required autoComplete="off" value={clientId} onInput={(e) => setClientId(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>Client secret</span>
        <input name="client_secret" type="password" required autoComplete="off" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
      </label>
      <ErrorBox error={error} />
      <div class="row">
        <button type="submit" class="primary">
          Save credentials
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
