// Sign-in: paste an API token. It is kept in memory and this tab's sessionStorage only —
// never in the address, never in a cookie.
import { useState } from "preact/hooks";
import { setToken } from "../api/client";

export function SignIn({ error }: { error: string | undefined }) {
  const [value, setValue] = useState("");
  return (
    <main class="signin" id="main">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) setToken(value.trim());
        }}
      >
        <h1>Vigil console</h1>
        <p class="muted">Sign in with an API token of your principal (an owner creates one under Principals).</p>
        <label class="field">
          <span>API token</span>
          <input
            type="password"
            name="token"
            autoComplete="off"
            spellcheck={false}
            required
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
          />
        </label>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
    </main>
  );
}
