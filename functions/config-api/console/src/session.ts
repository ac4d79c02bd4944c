// Who is signed in: the caller's own principal (GET /v1/me) decides what the console offers.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { S } from "./api/client";

export type Me = S["MeView"];
export type Permission = S["Permission"];

export const SessionContext = createContext<Me | null>(null);

export function useMe(): Me {
  const me = useContext(SessionContext);
  if (!me) throw new Error("not signed in");
  return me;
}

/** Whether the signed-in principal holds `permission` (the server enforces it anyway). */
export function useCan(permission: Permission): boolean {
  return useMe().permissions.includes(permission);
}

export const CATEGORIES: S["Category"][] = [
  "DataLossPrevention",
  "InformationGovernance",
  "MailFlow",
  "Permissions",
  "ThreatManagement",
  "Others",
];
export const SEVERITIES: S["Severity"][] = ["High", "Medium", "Low", "Informational"];
export const STATUSES: S["AlertStatus"][] = ["New", "InProgress", "Resolved"];
export const CLASSIFICATIONS: S["Classification"][] = ["TruePositive", "BenignPositive", "FalsePositive"];

/** The categories the principal sees (all when unrestricted). */
export function visibleCategories(me: Me): S["Category"][] {
  return me.categories ? CATEGORIES.filter((c) => me.categories!.includes(c)) : CATEGORIES;
}

export function words(identifier: string): string {
  return identifier.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/[_-]/g, " ");
}
