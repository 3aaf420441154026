"use client";
// The client half of @sessiond/js/next's <SessiondProvider>: React's
// provider with the server's initialState, the router for redirects, and
// router.refresh() when the page sees the session change, so server
// components re-render for the new session.
import { useRouter } from "next/navigation";
import type { ReactNode } from "react";
import type { InitialState } from "./index.js";
import { SessiondProvider } from "./react.js";

export function SessiondClientProvider({ url, initialState, children }: { url: string; initialState: InitialState; children?: ReactNode }) {
  const router = useRouter();
  return (
    <SessiondProvider url={url} initialState={initialState} navigate={(to) => router.push(to)} onSessionChange={() => router.refresh()}>
      {children}
    </SessiondProvider>
  );
}
