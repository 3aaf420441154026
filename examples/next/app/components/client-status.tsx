"use client";
// What the page's client provider believes: already right in the first
// HTML (initialState), then kept fresh (other tabs, the event stream).
import { useAuth, useSessiondState } from "@sessiond/js/react";

export function ClientStatus() {
  const { isSignedIn, userId } = useAuth();
  const { status } = useSessiondState();
  return <p data-testid="client-status">{status === "unavailable" ? "client: unavailable" : status === "loading" ? "client: loading" : isSignedIn ? `client: signed in as ${userId}` : "client: signed out"}</p>;
}
