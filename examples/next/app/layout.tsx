import { SessiondProvider } from "@sessiond/js/next";
import Link from "next/link";
import type { ReactNode } from "react";
import { ClientStatus } from "./components/client-status";

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        {/* sessiond as the page reaches it: proxied under this origin by app/api/auth */}
        <SessiondProvider url="/api/auth">
          <nav>
            <Link href="/">Home</Link> · <Link href="/protected">Protected</Link> · <Link href="/sign-in">Sign in</Link>
          </nav>
          <ClientStatus />
          {children}
        </SessiondProvider>
      </body>
    </html>
  );
}
