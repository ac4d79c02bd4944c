// Principals (owners only): who may use Vigil, with which role and categories; their tokens,
// created (the text shown once) and revoked.
import { useState } from "preact/hooks";
import { type S, api, message, ok } from "../api/client";
import { Card, ErrorBox, Loading, Page, Select, useAsync } from "../components/ui";
import { when } from "../format";
import { CATEGORIES, words } from "../session";

const ROLES: S["Role"][] = ["owner", "engineer", "analyst", "read-only"];

export function Principals() {
  const list = useAsync(async () => ok(await api.GET("/v1/principals")).principals, []);
  const [open, setOpen] = useState<string>();
  return (
    <Page title="Principals">
      <ErrorBox error={list.error} />
      <Loading show={list.loading && !list.data} />
      <div class="table-wrap">
        <table aria-label="Principals">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Categories</th>
              <th scope="col">Created</th>
              <th scope="col">Tokens</th>
            </tr>
          </thead>
          <tbody>
            {(list.data ?? []).map((p) => (
              <tr key={p.principal_id}>
                <td>
                  {p.name}
                  <div class="muted small">{p.email ?? ""}</div>
                </td>
                <td>{p.role}</td>
                <td>{p.categories ? p.categories.map(words).join(", ") : "every category"}</td>
                <td>{when(p.created_at)}</td>
                <td>
                  <button type="button" class="small" onClick={() => setOpen(open === p.principal_id ? undefined : p.principal_id)} aria-expanded={open === p.principal_id}>
                    Tokens
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {open ? <Tokens principal={open} /> : null}
      <NewPrincipalForm onDone={list.reload} />
    </Page>
  );
}

function Tokens({ principal }: { principal: string }) {
  const tokens = useAsync(async () => ok(await api.GET("/v1/principals/{principal_id}/tokens", { params: { path: { principal_id: principal } } })).tokens, [principal]);
  const [issued, setIssued] = useState<string>();
  const [error, setError] = useState<string>();
  const create = async () => {
    try {
      const t = ok(await api.POST("/v1/principals/{principal_id}/tokens", { params: { path: { principal_id: principal } }, body: { name: "console", expires_in_days: 30 } }));
      setIssued(t.token);
      tokens.reload();
    } catch (e) {
      setError(message(e));
    }
  };
  const revoke = async (token_id: string) => {
    try {
      ok(await api.DELETE("/v1/principals/{principal_id}/tokens/{token_id}", { params: { path: { principal_id: principal, token_id } } }));
      tokens.reload();
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <Card title="Tokens" wide>
      <ErrorBox error={tokens.error ?? error} />
      <ul class="plain">
        {(tokens.data ?? []).map((t) => (
          <li key={t.token_id}>
            {t.name} …{t.ends_with} · created {when(t.created_at)} · {t.live ? `expires ${when(t.expires_at)}` : `revoked ${when(t.revoked_at)}`}{" "}
            {t.live ? (
              <button type="button" class="small" onClick={() => revoke(t.token_id)}>
                Revoke
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      <button type="button" onClick={create}>
        Create a 30-day token
      </button>
      {issued ? (
        <p role="status">
          New token (shown once): <code class="mono">{issued}</code>
        </p>
      ) : null}
    </Card>
  );
}

function NewPrincipalForm({ onDone }: { onDone: () => void }) {
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<S["Role"]>("analyst");
  const [categories, setCategories] = useState<S["Category"][]>([]);
  const [error, setError] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      ok(await api.POST("/v1/principals", { body: { name, email: email || null, role, categories: categories.length ? categories : null } }));
      setName("");
      setEmail("");
      setError(undefined);
      onDone();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <Card title="New principal" wide>
      <form class="stack" onSubmit={submit}>
        <label class="field">
          <span>Name</span>
          <input name="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label class="field">
          <span>E-mail</span>
          <input name="email" type="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <Select label="Role" name="role" value={role} options={ROLES} onChange={(v) => setRole(v || "analyst")} />
        <fieldset>
          <legend>Alert categories (none ticked: every category)</legend>
          <div class="choices inline">
            {CATEGORIES.map((c) => (
              <label key={c}>
                <input type="checkbox" checked={categories.includes(c)}
                  onChange={(e) => setCategories(e.currentTarget.checked ? [...categories, c] : categories.filter((x) => x !== c))} /> {words(c)}
              </label>
            ))}
          </div>
        </fieldset>
        <ErrorBox error={error} />
        <button type="submit" class="primary">
          Create principal
        </button>
      </form>
    </Card>
  );
}
