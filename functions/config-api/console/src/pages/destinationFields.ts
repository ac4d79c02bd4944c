// The typed fields of each destination kind's settings and credentials (from the
// DestinationSettings / DestinationCredentials schemas), and the mapping of the API's
// validation errors ("settings.api_root: must use https") onto the field they name.
import type { S } from "../api/client";

export type Kind = S["DestinationKind"];

export interface Field {
  /** The property in settings or credentials. */
  key: string;
  label: string;
  required?: boolean;
  /** Write-only: a password input, never prefilled. */
  secret?: boolean;
  type?: "text" | "url" | "email" | "number";
  /** A list of values (one per line or separated by commas). */
  list?: boolean;
  options?: readonly string[];
  hint?: string;
}

export const KINDS: readonly Kind[] = ["connectwise", "autotask", "halopsa", "tigerpaw", "teams", "slack", "webhook", "email"];

export const KIND_NAMES: Record<Kind, string> = {
  connectwise: "ConnectWise Manage",
  autotask: "Autotask",
  halopsa: "HaloPSA",
  tigerpaw: "Tigerpaw",
  teams: "Microsoft Teams (Workflows)",
  slack: "Slack",
  webhook: "Signed webhook",
  email: "E-mail",
};

/** Kinds that keep tickets (boards or queues, priorities, company links). */
export const PSA_KINDS: readonly Kind[] = ["connectwise", "autotask", "halopsa", "tigerpaw"];

/** What a kind calls the place a ticket goes to. */
export const PLACE_NAMES: Partial<Record<Kind, string>> = {
  connectwise: "Board id",
  autotask: "Queue id",
  halopsa: "Team name",
  tigerpaw: "Dispatch board",
};

export const SETTINGS: Record<Kind, readonly Field[]> = {
  connectwise: [
    { key: "api_root", label: "API root", required: true, type: "url", hint: "e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0" },
    { key: "ticket_type", label: "Ticket type id" },
    { key: "source", label: "Source id" },
  ],
  autotask: [
    { key: "zone_url", label: "Zone URL", type: "url", hint: "https://webservicesN.autotask.net/atservicesrest/ — empty: discovered from the user name" },
    { key: "new_status", label: "Status of new tickets" },
    { key: "source", label: "Source" },
    { key: "issue_type", label: "Issue type" },
    { key: "sub_issue_type", label: "Sub-issue type" },
    { key: "ticket_type", label: "Ticket type" },
    { key: "ticket_category", label: "Ticket category" },
    { key: "note_type", label: "Note type" },
    { key: "note_publish", label: "Note publish" },
    { key: "due_in_hours", label: "Due after (hours)", type: "number" },
  ],
  halopsa: [
    { key: "url", label: "Instance URL", required: true, type: "url", hint: "e.g. https://msp.halopsa.com" },
    { key: "tenant", label: "Tenant (Halo-hosted only)" },
    { key: "ticket_type", label: "Ticket type id" },
    { key: "note_outcome", label: "Note outcome id", hint: "default 7, the private note" },
  ],
  tigerpaw: [
    { key: "url", label: "REST API URL", required: true, type: "url" },
    { key: "auth", label: "Authorization", options: ["tsi", "basic"] },
    { key: "rep_number", label: "Rep number of notes" },
    { key: "service_order_type", label: "Service order type" },
    { key: "new_status", label: "Status of new orders" },
    { key: "note_topic", label: "Note topic" },
  ],
  teams: [],
  slack: [],
  webhook: [
    { key: "url", label: "Endpoint URL", required: true, type: "url" },
    { key: "rotation_grace_hours", label: "Previous secret valid for (hours)", type: "number" },
  ],
  email: [
    { key: "recipients", label: "Recipients", required: true, list: true, hint: "one address per line, at most 50" },
    { key: "subject_prefix", label: "Subject prefix" },
  ],
};

export const CREDENTIALS: Record<Kind, readonly Field[]> = {
  connectwise: [
    { key: "company_id", label: "Company id", required: true },
    { key: "public_key", label: "Public key", required: true },
    { key: "private_key", label: "Private key", required: true, secret: true },
    { key: "client_id", label: "Client id", required: true },
  ],
  autotask: [
    { key: "username", label: "API user name", required: true, type: "email" },
    { key: "secret", label: "Secret", required: true, secret: true },
    { key: "integration_code", label: "Integration code", required: true, secret: true },
  ],
  halopsa: [
    { key: "client_id", label: "Client id", required: true },
    { key: "client_secret", label: "Client secret", required: true, secret: true },
  ],
  tigerpaw: [
    { key: "public_key", label: "Public key", required: true },
    { key: "private_key", label: "Private key", required: true, secret: true },
  ],
  teams: [{ key: "workflow_url", label: "Workflow URL", required: true, secret: true, hint: "the Workflows trigger URL with its sig parameter" }],
  slack: [{ key: "webhook_url", label: "Incoming webhook URL", required: true, secret: true }],
  webhook: [{ key: "secret", label: "Signing secret", required: true, secret: true, hint: "whsec_ and the base64 of 24 to 64 random bytes" }],
  email: [],
};

export type Values = Record<string, string>;

/** The form's values of a stored destination's settings (secrets never come from the server). */
export function settingsValues(settings: S["DestinationSettings"] | undefined): Values {
  const out: Values = {};
  if (!settings) return out;
  for (const [k, v] of Object.entries(settings)) {
    if (k === "kind" || v === null || v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join("\n") : String(v);
  }
  return out;
}

/** The request object of `fields` from the form's values: blanks left out, numbers and lists parsed. */
export function body(kind: Kind, fields: readonly Field[], values: Values): Record<string, unknown> {
  const out: Record<string, unknown> = { kind };
  for (const f of fields) {
    const raw = (values[f.key] ?? "").trim();
    if (!raw) continue;
    if (f.list) out[f.key] = raw.split(/[\n,]+/).map((x) => x.trim()).filter(Boolean);
    else if (f.type === "number") out[f.key] = Number(raw);
    else out[f.key] = raw;
  }
  return out;
}

/** The field a refusal names (`settings.api_root: …` → `settings.api_root`), and its message. */
export function fieldOfProblem(detail: string): { field: string; message: string } | undefined {
  const m = /^([a-z_]+(?:\.[A-Za-z_0-9]+)*(?:\[\d+\])?):\s*(.+)$/s.exec(detail);
  if (!m || !m[1] || !m[2]) return undefined;
  return { field: m[1].replace(/\[\d+\]$/, ""), message: m[2] };
}
