import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { SessiondProvider, SignOutButton, UserButton, useAuth, useSessiond } from "@sessiond/js/react";

function Nav() {
  return (
    <nav>
      <a href="/">React</a>
      <a href="/vue.html">Vue</a>
      <a href="/plain.html">Plain HTML</a>
    </nav>
  );
}

// The sign-in form posts to the demo's Go backend, which asks sessiond for
// a session and forwards its Set-Cookie headers to the browser.
export function SignInForm({ label = "Sign in", back = "/" }) {
  return (
    <form method="post" action="/sign-in" data-testid="sign-in">
      <input type="hidden" name="return" value={back} />
      <label>
        User name <input name="user_id" required autoComplete="username" />
      </label>{" "}
      <button type="submit">{label}</button>
      <p className="note">Any name will do: checking a password is the app's job, not sessiond's, and this demo skips it.</p>
    </form>
  );
}

function Problem() {
  const { status, error } = useSessiond();
  if (!error) return null;
  return (
    <p className="error" data-testid="error" role="alert">
      {status === "unavailable"
        ? `Cannot reach the sign-in service (${error.code}). You are still signed in; try again in a moment.`
        : `sessiond said ${error.status} ${error.code}: ${error.detail}`}
    </p>
  );
}

function Others() {
  const sessiond = useSessiond();
  const [ended, setEnded] = useState(null);
  return (
    <section data-testid="seed-others">
      <h3>Sign out other devices</h3>
      <button onClick={() => sessiond.signOutOthers().then((r) => setEnded(r.ended.length), () => undefined)}>Sign out other devices</button>
      {ended !== null && <span data-testid="others-ended"> ended {ended} other session{ended === 1 ? "" : "s"}</span>}
    </section>
  );
}

function Home() {
  const { isLoaded, isSignedIn, sessionId, userId } = useAuth();
  const { accounts } = useSessiond();
  if (!isLoaded) {
    return (
      <>
        <p data-testid="status">Loading…</p>
        <Problem />
      </>
    );
  }
  if (!isSignedIn) {
    return (
      <>
        <p data-testid="status">Signed out</p>
        <Problem />
        <SignInForm />
      </>
    );
  }
  return (
    <>
      <header>
        <p data-testid="status">
          Signed in as <b>{userId}</b> <small>({sessionId})</small>
        </p>
        <UserButton afterSignOutUrl="/" />
      </header>
      <Problem />
      <p data-testid="accounts">Accounts on this browser: {accounts.map((a) => a.user_id).join(", ")}</p>

      <section data-testid="seed-default">
        <h3>Default</h3>
        <code>{"<SignOutButton />"}</code> <SignOutButton />
      </section>
      <section data-testid="seed-custom">
        <h3>Custom child</h3>
        <SignOutButton>
          <button>Custom sign out button</button>
        </SignOutButton>
      </section>
      <section data-testid="seed-session">
        <h3>Just this account</h3>
        <code>{"<SignOutButton signOutOptions={{ sessionId }} />"}</code> <SignOutButton signOutOptions={{ sessionId }} />
      </section>
      <section data-testid="seed-redirect">
        <h3>Redirect after sign-out</h3>
        <code>{'<SignOutButton redirectUrl="/goodbye.html" />'}</code> <SignOutButton redirectUrl="/goodbye.html" />
      </section>
      <section data-testid="seed-refused">
        <h3>A redirect sessiond refuses</h3>
        <SignOutButton redirectUrl="https://elsewhere.example/">
          <button>Sign out to elsewhere.example</button>
        </SignOutButton>
        <span className="note"> sessiond answers 400 invalid_redirect_url; nothing ends, nothing navigates.</span>
      </section>
      <Others />
      <section data-testid="add-account">
        <h3>Add an account</h3>
        <SignInForm label="Add account" />
      </section>
    </>
  );
}

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <SessiondProvider url="/api/auth">
      <Nav />
      <h1>sessiond demo · React</h1>
      <Home />
    </SessiondProvider>
  </StrictMode>,
);
