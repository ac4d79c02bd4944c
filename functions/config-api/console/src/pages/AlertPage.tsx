// One alert: what it is made of (facts, activity list, hit timeline, entities), its triage
// history and comments, each destination's ticket with its PSA status, triage actions and
// "suppress like this" (pre-filled from the alert).
import { useState } from "preact/hooks";
import { type S, api, message, ok } from "../api/client";
import { Badge, Card, Dialog, ErrorBox, Loading, Page, Select, useAsync } from "../components/ui";
import { when } from "../format";
import { href } from "../router";
import { CLASSIFICATIONS, STATUSES, useCan, words } from "../session";

type AlertView = S["AlertView"];

export function AlertPage({ id }: { id: string }) {
  const alert = useAsync(async () => ok(await api.GET("/v1/alerts/{alert_id}", { params: { path: { alert_id: id } } })), [id]);
  const a = alert.data;
  return (
    <Page title={a ? a.title : "Alert"} actions={<a href={href(["alerts"])}>← Alerts</a>}>
      <ErrorBox error={alert.error} />
      <Loading show={alert.loading && !a} />
      {a ? <AlertBody alert={a} reload={alert.reload} /> : null}
    </Page>
  );
}

function AlertBody({ alert: a, reload }: { alert: AlertView; reload: () => void }) {
  const canTriage = useCan("alerts:triage");
  const canSuppress = useCan("suppressions:write");
  const [suppressing, setSuppressing] = useState(false);
  const detail = a.detail;
  const history = a.triage?.history ?? [];
  const comments = a.triage?.comments ?? [];
  return (
    <div class="grid">
      <Card title="Summary" wide>
        <dl class="facts">
          <dt>Severity</dt>
          <dd>
            <Badge kind={a.severity}>{a.severity}</Badge>
          </dd>
          <dt>Status</dt>
          <dd>
            <Badge kind={a.status}>{words(a.status)}</Badge>
          </dd>
          <dt>Tenant</dt>
          <dd>{a.tenant_name}</dd>
          <dt>Policy</dt>
          <dd>
            {a.policy_name} <span class="muted small">({a.policy_id})</span>
          </dd>
          <dt>Category</dt>
          <dd>{words(a.category)}</dd>
          <dt>Hits</dt>
          <dd>
            {a.hit_count} between {when(a.first_seen)} and {when(a.last_seen)}
          </dd>
          {a.triage?.assignee ? (
            <>
              <dt>Assignee</dt>
              <dd>{a.triage.assignee}</dd>
            </>
          ) : null}
          {a.triage?.classification ? (
            <>
              <dt>Classification</dt>
              <dd>{words(a.triage.classification)}</dd>
            </>
          ) : null}
          {a.facts.map((f) => (
            <>
              <dt>{f.name}</dt>
              <dd>{f.value}</dd>
            </>
          ))}
        </dl>
        {detail?.description ? <p>{detail.description}</p> : null}
        {canSuppress ? (
          <button type="button" onClick={() => setSuppressing(true)}>
            Suppress like this…
          </button>
        ) : null}
      </Card>
      {canTriage ? <TriageForm alert={a} onDone={reload} /> : null}
      <Card title="Triage history">
        {history.length === 0 ? <p class="muted">No triage yet.</p> : null}
        <ol class="timeline" aria-label="Triage history">
          {history.map((h, i) => (
            <li key={i}>
              <time dateTime={h.at}>{when(h.at)}</time> <strong>{h.author}</strong> set {h.field}
              {h.from ? ` from ${h.from}` : ""} to {h.to ?? "nothing"}
            </li>
          ))}
        </ol>
        {comments.length ? <h3>Comments</h3> : null}
        <ul class="comments" aria-label="Comments">
          {comments.map((c, i) => (
            <li key={i}>
              <time dateTime={c.at}>{when(c.at)}</time> <strong>{c.author}</strong>: {c.text}
            </li>
          ))}
        </ul>
      </Card>
      <Card title="Tickets">
        {a.deliveries.length === 0 ? <p class="muted">Not delivered anywhere yet.</p> : null}
        <ul class="plain tickets" aria-label="Tickets">
          {a.deliveries.map((d) => (
            <li key={d.destination}>
              <Delivery delivery={d} />
            </li>
          ))}
        </ul>
      </Card>
      <Card title="Hit timeline">
        <HitTimeline alert={a} />
      </Card>
      <Card title="Entities">
        <Entities entities={detail?.entities} />
      </Card>
      <Card title="Activity" wide>
        {/* Focusable so the keyboard can scroll it sideways on a narrow screen. */}
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Activity table">
          <table aria-label="Activity">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Operation</th>
                <th scope="col">User</th>
                <th scope="col">IP</th>
                <th scope="col">What</th>
              </tr>
            </thead>
            <tbody>
              {(detail?.activities ?? []).map((e) => (
                <tr key={e.record_id}>
                  <td>{when(e.time)}</td>
                  <td>{e.operation}</td>
                  <td>{e.user}</td>
                  <td>{e.client_ip ?? ""}</td>
                  <td>{e.summary}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {detail?.activity_counts ? (
          <p class="muted small">
            Counted: {Object.entries(detail.activity_counts).map(([op, n]) => `${op} ${n}`).join(", ")}
            {detail.truncated ? " (the list keeps the first events only)" : ""}
          </p>
        ) : null}
      </Card>
      <Dialog open={suppressing} title="Suppress alerts like this" onClose={() => setSuppressing(false)}>
        <SuppressForm alert={a} onDone={() => setSuppressing(false)} />
      </Dialog>
    </div>
  );
}

const CHANNELS: readonly S["DestinationKind"][] = ["teams", "slack", "webhook", "email"];

/** One destination's delivery: a PSA's ticket with its last known PSA status and a link to it,
 *  or for a chat, webhook or e-mail destination what was posted. */
function Delivery({ delivery: d }: { delivery: S["DeliveryView"] }) {
  const name = d.destination_name ?? `${d.destination} (deleted)`;
  const channel = d.destination_kind ? CHANNELS.includes(d.destination_kind) : false;
  const ticket = d.ticket ? (
    d.ticket_url ? (
      <a href={d.ticket_url} target="_blank" rel="noopener noreferrer">
        ticket #{d.ticket}
        <span class="visually-hidden"> (opens in a new tab)</span>
      </a>
    ) : (
      <span>ticket #{d.ticket}</span>
    )
  ) : null;
  return (
    <>
      <strong>{name}</strong> {d.destination_kind ? <span class="muted small">({d.destination_kind})</span> : null}:{" "}
      {channel ? (
        <span>{channelResult(d)}</span>
      ) : (
        <>
          {ticket ?? (d.held_until_linked ? "held until the tenant is linked" : "no ticket yet")}
          {d.psa_state ? (
            <>
              {" "}
              · <Badge kind={d.psa_state.state}>{psaState(d.psa_state)}</Badge>
              {d.psa_checked_at ? <span class="muted small"> as of {when(d.psa_checked_at)}</span> : null}
            </>
          ) : d.ticket ? (
            <span class="muted small"> · PSA status not read yet</span>
          ) : null}
          {d.closed ? " · closed by Vigil" : ""}
        </>
      )}
      {d.earlier_tickets.length ? (
        <div class="muted small">
          earlier:{" "}
          {d.earlier_tickets.map((t, i) => (
            <>
              {i ? ", " : ""}
              {t.url ? (
                <a href={t.url} target="_blank" rel="noopener noreferrer">
                  #{t.ticket}
                </a>
              ) : (
                `#${t.ticket}`
              )}{" "}
              ({t.ended})
            </>
          ))}
        </div>
      ) : null}
    </>
  );
}

function channelResult(d: S["DeliveryView"]): string {
  const parts: string[] = [];
  if (d.messages_posted) parts.push(`${d.messages_posted} message(s) posted`);
  if (d.messages_uncertain) parts.push(`${d.messages_uncertain} unanswered (may have arrived)`);
  if (d.messages_over_limit) parts.push(`${d.messages_over_limit} over the daily e-mail limit`);
  if (d.held_until_linked) parts.push("held until the tenant is linked");
  return parts.length ? parts.join(" · ") : "nothing posted yet";
}

function psaState(s: S["TicketState"]): string {
  if (s.state === "gone") return "gone from the PSA";
  if (s.state === "closed") return `closed (${s.status})${s.by ? ` by ${s.by}` : ""}`;
  return `open: ${s.status}`;
}

function HitTimeline({ alert: a }: { alert: AlertView }) {
  const times = (a.detail?.activities ?? []).map((e) => new Date(e.time).getTime()).sort((x, y) => x - y);
  const start = new Date(a.first_seen).getTime();
  const end = Math.max(new Date(a.last_seen).getTime(), start + 1);
  const w = 300;
  return (
    <figure>
      <svg class="timeline-chart" viewBox={`0 0 ${w} 30`} role="img" aria-label={`${a.hit_count} hits from ${when(a.first_seen)} to ${when(a.last_seen)}`}>
        <line x1="0" y1="15" x2={w} y2="15" class="axis" />
        {times.map((t, i) => (
          <circle key={i} cx={((t - start) / (end - start)) * (w - 8) + 4} cy="15" r="4" class="hit" />
        ))}
      </svg>
      <figcaption class="muted small">
        {when(a.first_seen)} → {when(a.last_seen)} · {a.hit_count} hit(s)
      </figcaption>
    </figure>
  );
}

function Entities({ entities }: { entities: S["Entities"] | undefined }) {
  if (!entities) return <p class="muted">None recorded.</p>;
  const kinds: [string, string[] | undefined][] = [
    ["Users", entities.users],
    ["Mailboxes", entities.mailboxes],
    ["IP addresses", entities.ips],
    ["Files", entities.files],
    ["URLs", entities.urls],
  ];
  return (
    <dl class="facts">
      {kinds
        .filter(([, v]) => v && v.length)
        .map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd>{v!.join(", ")}</dd>
          </>
        ))}
    </dl>
  );
}

function TriageForm({ alert: a, onDone }: { alert: AlertView; onDone: () => void }) {
  const [status, setStatus] = useState<S["AlertStatus"] | "">(a.status);
  const [assignee, setAssignee] = useState(a.triage?.assignee ?? "");
  const [classification, setClassification] = useState<S["Classification"] | "">(a.triage?.classification ?? "");
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const body: S["TriageUpdate"] = {};
    if (status && status !== a.status) body.status = status;
    if (assignee !== (a.triage?.assignee ?? "")) body.assignee = assignee;
    if (classification && classification !== a.triage?.classification) body.classification = classification;
    if (comment.trim()) body.comment = comment.trim();
    if (Object.keys(body).length === 0) return setError("Nothing changed.");
    setBusy(true);
    try {
      ok(await api.PATCH("/v1/alerts/{alert_id}", { params: { path: { alert_id: a.id } }, body }));
      setComment("");
      setError(undefined);
      onDone();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title="Triage">
      <form class="stack" onSubmit={submit} aria-label="Triage">
        <Select label="Status" name="status" value={status} options={STATUSES} onChange={setStatus} show={words} />
        <label class="field">
          <span>Assignee</span>
          <input name="assignee" value={assignee} onInput={(e) => setAssignee(e.currentTarget.value)} />
        </label>
        <Select label="Classification" name="classification" any="Not classified" value={classification} options={CLASSIFICATIONS} onChange={setClassification} show={words} />
        <label class="field">
          <span>Comment</span>
          <textarea name="comment" rows={3} value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
        </label>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          Save triage
        </button>
      </form>
    </Card>
  );
}

function SuppressForm({ alert: a, onDone }: { alert: AlertView; onDone: () => void }) {
  const [scope, setScope] = useState<"user" | "tenant">("user");
  const [reason, setReason] = useState(`Like alert "${a.title}"`);
  const [days, setDays] = useState("30");
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<S["Suppression"]>();
  const submit = async (e: Event) => {
    e.preventDefault();
    const n = Number(days);
    const expires_at = n > 0 ? new Date(Date.now() + n * 86400_000).toISOString() : null;
    try {
      setDone(ok(await api.POST("/v1/alerts/{alert_id}/suppress", { params: { path: { alert_id: a.id } }, body: { reason, scope, expires_at } })));
      setError(undefined);
    } catch (err) {
      setError(message(err));
    }
  };
  if (done)
    return (
      <div class="stack">
        <p role="status">
          Suppression {done.id} created{done.expires_at ? `, until ${when(done.expires_at)}` : ""}.
        </p>
        <button type="button" onClick={onDone}>
          Close
        </button>
      </div>
    );
  return (
    <form class="stack" onSubmit={submit}>
      <p class="muted">
        Policy <strong>{a.policy_name}</strong> in tenant <strong>{a.tenant_name}</strong>
        {scope === "user" ? (
          <>
            {" "}
            for <strong>{a.group_key}</strong>
          </>
        ) : null}
        .
      </p>
      <Select label="Scope" name="scope" value={scope} options={["user", "tenant"] as const} onChange={(v) => setScope(v || "user")}
        show={(v) => (v === "user" ? "This policy, tenant and user" : "This policy and tenant")} />
      <label class="field">
        <span>Reason</span>
        <input name="reason" required value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>Expires after (days, 0 = never)</span>
        <input name="days" type="number" min="0" value={days} onInput={(e) => setDays(e.currentTarget.value)} />
      </label>
      <ErrorBox error={error} />
      <div class="row">
        <button type="submit" class="primary">
          Create suppression
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
