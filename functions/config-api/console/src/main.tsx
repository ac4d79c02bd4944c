// The console's entry point: sign-in, the shell (navigation, theme) and the page router.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, currentToken, message, ok, onTokenChange, setToken } from "./api/client";
import { href, useRoute } from "./router";
import { type Me, type Permission, SessionContext, visibleCategories } from "./session";
import { AlertPage } from "./pages/AlertPage";
import { Alerts } from "./pages/Alerts";
import { AuditLog } from "./pages/AuditLog";
import { Destinations } from "./pages/Destinations";
import { Onboarding } from "./pages/Onboarding";
import { Overview } from "./pages/Overview";
import { Policies } from "./pages/Policies";
import { Principals } from "./pages/Principals";
import { Relationships } from "./pages/Relationships";
import { SignIn } from "./pages/SignIn";
import { TenantPage } from "./pages/TenantPage";
import { Tenants } from "./pages/Tenants";

type Theme = "system" | "light" | "dark";
const THEME_KEY = "vigil.console.theme";

function applyTheme(theme: Theme): void {
  if (theme === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

interface NavItem {
  path: string;
  label: string;
  needs: Permission;
  /** Shown only to a principal who sees this alert category (the report is about access). */
  category?: "Permissions";
}

const NAV: NavItem[] = [
  { path: "overview", label: "Overview", needs: "alerts:read" },
  { path: "alerts", label: "Alerts", needs: "alerts:read" },
  { path: "tenants", label: "Tenants", needs: "config:read" },
  { path: "onboarding", label: "Onboarding", needs: "config:read" },
  { path: "policies", label: "Policies", needs: "config:read" },
  { path: "destinations", label: "Destinations", needs: "config:read" },
  { path: "admin-relationships", label: "Admin relationships", needs: "config:read", category: "Permissions" },
  { path: "audit-log", label: "Audit log", needs: "audit:read" },
  { path: "principals", label: "Principals", needs: "principals:manage" },
];

export function allowedNav(me: Me): NavItem[] {
  return NAV.filter((n) => me.permissions.includes(n.needs) && (!n.category || visibleCategories(me).includes(n.category)));
}

function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem(THEME_KEY) as Theme | null) ?? "system");
  useEffect(() => {
    applyTheme(theme);
    localStorage.setItem(THEME_KEY, theme);
  }, [theme]);
  const next: Record<Theme, Theme> = { system: "dark", dark: "light", light: "system" };
  return (
    <button type="button" class="ghost" onClick={() => setTheme(next[theme])} aria-label={`Theme: ${theme}. Change theme`}>
      Theme: {theme}
    </button>
  );
}

function Shell({ me }: { me: Me }) {
  const route = useRoute();
  const nav = allowedNav(me);
  const first = route.path[0] ?? nav[0]?.path ?? "";
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => {
    setMenuOpen(false);
    // Move focus to the new page's heading so keyboard and screen-reader users land there.
    requestAnimationFrame(() => document.getElementById("page-title")?.focus({ preventScroll: true }));
  }, [route.path.join("/")]);
  const allowed = nav.some((n) => n.path === first);
  return (
    <SessionContext.Provider value={me}>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href([nav[0]?.path ?? ""])}>
          Vigil
        </a>
        <button type="button" class="ghost menu" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <div class="who">
          <span data-testid="who">
            {me.name} · <strong>{me.role}</strong>
            {me.categories ? ` · ${me.categories.join(", ")}` : ""}
          </span>
          <ThemeToggle />
          <button type="button" class="ghost" onClick={() => setToken(null)}>
            Sign out
          </button>
        </div>
      </header>
      <div class="layout">
        <nav id="nav" class={menuOpen ? "open" : ""} aria-label="Main">
          <ul>
            {nav.map((n) => (
              <li key={n.path}>
                <a href={href([n.path])} aria-current={n.path === first ? "page" : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          {allowed ? <View path={route.path} query={route.query} /> : <p class="error">Nothing here for your role.</p>}
        </main>
      </div>
    </SessionContext.Provider>
  );
}

function View({ path, query }: { path: string[]; query: URLSearchParams }) {
  switch (path[0] ?? "") {
    case "overview":
      return <Overview />;
    case "alerts":
      return path[1] ? <AlertPage id={path[1]} /> : <Alerts query={query} />;
    case "tenants":
      return path[1] ? <TenantPage id={path[1]} /> : <Tenants />;
    case "onboarding":
      return <Onboarding />;
    case "policies":
      return <Policies />;
    case "destinations":
      return <Destinations />;
    case "admin-relationships":
      return <Relationships />;
    case "audit-log":
      return <AuditLog />;
    case "principals":
      return <Principals />;
    default:
      return <Overview />;
  }
}

function App() {
  const [token, setTokenState] = useState(currentToken());
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | undefined>();
  useEffect(() => onTokenChange(() => setTokenState(currentToken())), []);
  useEffect(() => {
    setMe(null);
    if (!token) return;
    api.GET("/v1/me").then(
      (r) => {
        try {
          setMe(ok(r));
          setError(undefined);
        } catch (e) {
          setError(message(e));
          setToken(null);
        }
      },
      (e: unknown) => setError(message(e)),
    );
  }, [token]);
  if (!token) return <SignIn error={error} />;
  if (!me)
    return (
      <p class="muted center" role="status">
        Signing in…
      </p>
    );
  if (!window.location.hash) window.location.replace(href([allowedNav(me)[0]?.path ?? "overview"]));
  return <Shell me={me} />;
}

applyTheme((localStorage.getItem(THEME_KEY) as Theme | null) ?? "system");
const root = document.getElementById("app");
if (root) render(<App />, root);
