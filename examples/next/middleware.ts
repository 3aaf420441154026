// One call to sessiond per page request (auth() reuses it); /protected
// needs a signed-in user. sessiond's own path (/api/auth, proxied to it),
// static files and the router's prefetches are left alone: Next strips the
// prefetch headers from the request a middleware sees, so only the matcher
// can tell a prefetch apart (and a prefetch of these dynamic pages renders
// nothing that asks who is signed in).
import { sessiondMiddleware } from "@sessiond/js/next";

export default sessiondMiddleware({ protect: (req) => req.nextUrl.pathname.startsWith("/protected") });

export const config = {
  matcher: [
    {
      source: "/((?!api/auth|_next/static|_next/image|favicon.ico).*)",
      missing: [
        { type: "header", key: "next-router-prefetch" },
        { type: "header", key: "purpose", value: "prefetch" },
      ],
    },
  ],
};
