// Onboarding: the MSP's multi-tenant Entra app (the secret write-only), a consent link per
// customer (copied and sent to the customer's administrator), every link and what became of
// it, and the partner tenant's customers discovered from GDAP: several picked at once are
// onboarded in bulk, with progress per customer. Each action only for a role that may take it.
import { useEffect, useState } from "preact/hooks";
import { ApiError, type S, api, message, ok } from "../api/client";
import { Badge, Card, ErrorBox, Loading, Page, useAsync } from "../components/ui";
import { when } from "../format";
import { href } from "../router";
import { useCan, words } from "../session";

/** Most customers one bulk onboarding takes (the API's limit). */
const BULK_MAX = 50;

export function Onboarding() {
  const canCredentials = useCan("credentials:write");
  const app = useAsync(async () => {
    const r = await api.GET("/v1/onboarding/app");
    return r.response.status === 404 ? null : ok(r);
  }, []);
  const links = useAsync(async () => ok(await api.GET("/v1/onboarding/consent-links")).links, []);
  return (
    <Page title="Onboarding">
      <div class="grid">
        <Card title="MSP app">
          <ErrorBox error={app.error} />
          <Loading show={app.loading && app.data === undefined} />
          {app.data ? (
            <dl class="facts">
              <dt>Client id</dt>
              <dd class="mono">{app.data.client_id}</dd>
              <dt>Redirect URI</dt>
              <dd class="mono small">{app.data.redirect_uri}</dd>
              <dt>Registered</dt>
              <dd>{when(app.data.registered_at)}</dd>
            </dl>
          ) : app.data === null ? (
            <p class="muted">No app registered yet: register the MSP's multi-tenant Entra app once, then send each customer a consent link.</p>
          ) : null}
          {canCredentials ? <AppForm registered={!!app.data} onDone={app.reload} /> : null}
        </Card>
        {canCredentials ? (
          <Card title="New consent link">
            {app.data ? <LinkForm onDone={links.reload} /> : <p class="muted">Register the MSP app first.</p>}
          </Card>
        ) : null}
      </div>
      <Links links={links.data} error={links.error} loading={links.loading} />
      <Discovery canOnboard={canCredentials && !!app.data} onOnboarded={links.reload} />
    </Page>
  );
}

function AppForm({ registered, onDone }: { registered: boolean; onDone: () => void }) {
  const [clientId, setClientId] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<string>();
  const [saved, setSaved] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setSaved(false);
    try {
      ok(await api.PUT("/v1/onboarding/app", { body: { client_id: clientId.trim(), client_secret: secret } }));
      // The secret is write-only: it leaves the page once sent.
      setSecret("");
      setSaved(true);
      onDone();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <form class="stack" aria-label={registered ? "Replace the MSP app" : "Register the MSP app"} onSubmit={submit}>
      <label class="field">
        <span>Application (client) id</span>
        <input name="client_id" required value={clientId} onInput={(e) => setClientId(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>Client secret (write-only, never shown again)</span>
        <input name="client_secret" type="password" autocomplete="off" required value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
      </label>
      <ErrorBox error={error} />
      {saved ? <p role="status">App saved. Register the redirect URI above on the app in Entra.</p> : null}
      <div class="row">
        <button type="submit">{registered ? "Replace the app" : "Register the app"}</button>
      </div>
    </form>
  );
}

/** Copies `text`, saying so (a browser without clipboard access leaves the text selectable). */
function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState<boolean>();
  return (
    <>
      <button type="button" class="small" aria-label={label} onClick={() => navigator.clipboard.writeText(text).then(() => setCopied(true), () => setCopied(false))}>
        Copy
      </button>
      {copied === undefined ? null : (
        <span role="status" class="muted small">
          {copied ? "Copied" : "Copy refused by the browser: select the link instead"}
        </span>
      )}
    </>
  );
}

function LinkForm({ onDone }: { onDone: () => void }) {
  const [name, setName] = useState("");
  const [tenant, setTenant] = useState("");
  const [hours, setHours] = useState("72");
  const [error, setError] = useState<string>();
  const [link, setLink] = useState<S["ConsentLink"]>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      const made = ok(
        await api.POST("/v1/onboarding/consent-links", {
          body: { customer_name: name.trim(), tenant_id: tenant.trim() || undefined, hours: Number(hours) || undefined },
        }),
      );
      setLink(made);
      onDone();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <form class="stack" aria-label="New consent link" onSubmit={submit}>
      <label class="field">
        <span>Customer name</span>
        <input name="customer_name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>Tenant id (optional: a consent from any other tenant is refused)</span>
        <input name="tenant_id" value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>Valid for (hours, 1 to 720)</span>
        <input name="hours" type="number" min={1} max={720} value={hours} onInput={(e) => setHours(e.currentTarget.value)} />
      </label>
      <ErrorBox error={error} />
      <div class="row">
        <button type="submit">Create the link</button>
      </div>
      {link ? (
        <div class="stack" data-testid="new-link">
          <label class="field">
            <span>Send this link to {link.customer_name}'s administrator (valid until {when(link.expires_at)})</span>
            <input name="consent_url" readOnly value={link.url} onFocus={(e) => e.currentTarget.select()} />
          </label>
          <div class="row">
            <CopyButton text={link.url} label={`Copy the consent link for ${link.customer_name}`} />
          </div>
        </div>
      ) : null}
    </form>
  );
}

/** A link's state as a badge and, where it has one, its tenant or Microsoft's error. */
function LinkState({ status }: { status: S["LinkStatus"] }) {
  switch (status.status) {
    case "consented":
      return (
        <>
          <Badge kind="ok">consented</Badge> <a href={href(["tenants", status.tenant_id])}>access test</a>
        </>
      );
    case "unconfirmed":
      return (
        <>
          <Badge kind="failing">unconfirmed</Badge> <span class="small">{status.error}</span> <a href={href(["tenants", status.tenant_id])}>access test</a>
        </>
      );
    case "declined":
      return (
        <>
          <Badge kind="failed">declined</Badge> <span class="small">{status.error}: {status.description}</span>
        </>
      );
    case "refused":
      return (
        <>
          <Badge kind="failed">refused</Badge> <span class="small">{status.reason}</span>
        </>
      );
    default:
      return <Badge kind="requested">issued</Badge>;
  }
}

function Links({ links, error, loading }: { links: S["ConsentLink"][] | undefined; error: string | undefined; loading: boolean }) {
  return (
    <section aria-labelledby="links-title">
      <h2 id="links-title">Consent links</h2>
      <ErrorBox error={error} />
      <Loading show={loading && !links} />
      {links && links.length === 0 ? <p class="muted">No consent link yet.</p> : null}
      {links && links.length ? (
        <div class="table-wrap">
          <table aria-label="Consent links">
            <thead>
              <tr>
                <th scope="col">Customer</th>
                <th scope="col">State</th>
                <th scope="col">Issued</th>
                <th scope="col">Expires</th>
                <th scope="col">Link</th>
              </tr>
            </thead>
            <tbody>
              {[...links]
                .sort((a, b) => b.issued_at.localeCompare(a.issued_at))
                .map((l) => (
                  <tr key={l.id} data-link={l.id}>
                    <td>
                      {l.customer_name}
                      {l.expected_tenant ? <div class="muted small mono">{l.expected_tenant}</div> : null}
                    </td>
                    <td>
                      <LinkState status={l.status} />
                    </td>
                    <td>{when(l.issued_at)}</td>
                    <td>{when(l.expires_at)}</td>
                    <td>{l.status.status === "issued" ? <CopyButton text={l.url} label={`Copy the consent link for ${l.customer_name}`} /> : "—"}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

function Discovery({ canOnboard, onOnboarded }: { canOnboard: boolean; onOnboarded: () => void }) {
  const customers = useAsync(async () => ok(await api.GET("/v1/onboarding/discovery")).customers, []);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [error, setError] = useState<string>();
  const [job, setJob] = useState<string>();
  const open = (customers.data ?? []).filter((c) => !c.watched);
  const onboard = async () => {
    setError(undefined);
    try {
      const made = ok(await api.POST("/v1/onboarding/bulk", { body: { tenant_ids: [...selected] } }));
      setSelected(new Set());
      setJob(made.id);
      onOnboarded();
    } catch (err) {
      setError(message(err));
    }
  };
  const toggle = (id: string, on: boolean) => {
    const next = new Set(selected);
    if (on) next.add(id);
    else next.delete(id);
    setSelected(next);
  };
  return (
    <section aria-labelledby="discovery-title">
      <h2 id="discovery-title">Customers in the partner tenant</h2>
      <p class="muted small">From the partner tenant's GDAP relationships as last read.</p>
      <ErrorBox error={customers.error} />
      <Loading show={customers.loading && !customers.data} />
      {customers.data && customers.data.length === 0 ? <p class="muted">No customer discovered (is the partner tenant connected?).</p> : null}
      {customers.data && customers.data.length ? (
        <>
          {canOnboard ? (
            <div class="row">
              <button type="button" disabled={selected.size === 0 || selected.size > BULK_MAX} onClick={onboard}>
                Onboard {selected.size} selected
              </button>
              {selected.size > BULK_MAX ? <span class="error">At most {BULK_MAX} at once.</span> : null}
            </div>
          ) : null}
          <ErrorBox error={error} />
          <div class="table-wrap">
            <table aria-label="Discovered customers">
              <thead>
                <tr>
                  {canOnboard ? (
                    <th scope="col">
                      <input type="checkbox" aria-label="Select every customer not yet watched" checked={open.length > 0 && open.every((c) => selected.has(c.tenant_id))}
                        onChange={(e) => setSelected(e.currentTarget.checked ? new Set(open.map((c) => c.tenant_id)) : new Set())} />
                    </th>
                  ) : null}
                  <th scope="col">Customer</th>
                  <th scope="col">Relationships and roles</th>
                  <th scope="col">Onboarding</th>
                  <th scope="col">Watched</th>
                </tr>
              </thead>
              <tbody>
                {customers.data.map((c) => (
                  <tr key={c.tenant_id} data-tenant={c.tenant_id}>
                    {canOnboard ? (
                      <td>
                        <input type="checkbox" aria-label={`Select ${c.name}`} disabled={c.watched} checked={selected.has(c.tenant_id)} onChange={(e) => toggle(c.tenant_id, e.currentTarget.checked)} />
                      </td>
                    ) : null}
                    <td>
                      {c.name}
                      <div class="muted small mono">{c.tenant_id}</div>
                    </td>
                    <td class="small">
                      {c.relationships.map((r) => (
                        <div key={r.id}>
                          {r.display_name} <span class="muted">({words(r.status)})</span>: {r.roles.join(", ") || "no roles"}
                        </div>
                      ))}
                    </td>
                    <td class="small">{c.direct_possible ? "direct (GDAP roles allow it)" : "consent link"}</td>
                    <td>{c.watched ? <Badge kind="ok">watched</Badge> : <span class="muted">not watched</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
      {job ? <BulkProgress id={job} onChange={customers.reload} /> : null}
    </section>
  );
}

/** A bulk onboarding's progress per customer, read again every few seconds until each is settled. */
function BulkProgress({ id, onChange }: { id: string; onChange: () => void }) {
  const [job, setJob] = useState<S["BulkJob"]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let settled = -1;
    const read = async () => {
      try {
        const now = ok(await api.GET("/v1/onboarding/bulk/{job_id}", { params: { path: { job_id: id } } }));
        if (!live) return;
        setJob(now);
        setError(undefined);
        const done = now.items.filter((i) => i.status.status !== "issued").length;
        if (done !== settled) {
          if (settled >= 0) onChange();
          settled = done;
        }
        if (done < now.items.length) timer = setTimeout(read, 3000);
      } catch (err) {
        if (live) setError(err instanceof ApiError ? err.message : message(err));
      }
    };
    read();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [id]);
  return (
    <section aria-labelledby="bulk-title">
      <h3 id="bulk-title">Bulk onboarding {job ? `of ${when(job.created_at)}` : ""}</h3>
      <ErrorBox error={error} />
      {job ? (
        <div class="table-wrap">
          <table aria-label="Bulk onboarding progress">
            <thead>
              <tr>
                <th scope="col">Customer</th>
                <th scope="col">How</th>
                <th scope="col">State</th>
                <th scope="col">Access test</th>
                <th scope="col">Link</th>
              </tr>
            </thead>
            <tbody>
              {job.items.map((i) => (
                <tr key={i.tenant_id} data-tenant={i.tenant_id}>
                  <td>{i.name}</td>
                  <td>
                    {words(i.method)}
                    {(i.steps ?? []).map((st) => (
                      <div class="small muted" key={st.step}>
                        {st.step}: {words(st.result)}
                        {st.error ? ` — ${st.error}` : ""}
                      </div>
                    ))}
                  </td>
                  <td>
                    <LinkState status={i.status} />
                  </td>
                  <td>{i.access_test_passed == null ? <span class="muted">not run</span> : i.access_test_passed ? <Badge kind="ok">passed</Badge> : <Badge kind="failed">failed</Badge>}</td>
                  <td>{i.status.status === "issued" && i.url ? <CopyButton text={i.url} label={`Copy the consent link for ${i.name}`} /> : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Loading show />
      )}
    </section>
  );
}
