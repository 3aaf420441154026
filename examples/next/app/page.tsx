import { auth, SessiondError } from "@sessiond/js/next";
import { signOutAction } from "./actions";

export default async function Home() {
  // Unprotected: when sessiond is down the page still renders, saying so.
  const a = await auth().catch((err) => {
    if (err instanceof SessiondError && err.isUnavailable) return null;
    throw err;
  });
  return (
    <main>
      <h1 data-testid="server-status">{!a ? "Unavailable" : a.isSignedIn ? `Signed in as ${a.userId}` : "Signed out"}</h1>
      {a?.isSignedIn && (
        <form action={signOutAction}>
          <button type="submit">Sign out</button>
        </form>
      )}
    </main>
  );
}
