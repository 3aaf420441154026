import { clientFor } from "@sessiond/js/element";

// The elements sign out; the page itself only shows who is signed in,
// with the same client the elements use.
const sessiond = clientFor("/api/auth");
const $ = (sel) => document.querySelector(sel);

sessiond.addListener(({ status, isLoaded, session, error }) => {
  $("[data-testid=status]").textContent = !isLoaded ? "Loading…" : session ? `Signed in as ${session.user_id} (${session.id})` : "Signed out";
  $("#signed-in").hidden = !session;
  $("[data-testid=sign-in]").hidden = !isLoaded || !!session;
  if (session) $("#one").setAttribute("session-id", session.id);
  const err = $("[data-testid=error]");
  err.hidden = !error;
  err.textContent = !error ? "" : status === "unavailable" ? `Cannot reach the sign-in service (${error.code}). You are still signed in; try again in a moment.` : `${error.code}: ${error.detail}`;
});
document.addEventListener("sessiond:error", (e) => console.warn("sign-out failed", e.detail));
sessiond.load();
