// sessiond behind the app's origin: /api/auth/* goes to SESSIOND_URL (the
// sign-out button's calls). Only the headers sessiond reads go in; its
// Set-Cookie headers come back one by one, verbatim.
import type { APIRoute } from "astro";

export const ALL: APIRoute = async ({ request, params }) => {
  const headers = new Headers();
  for (const name of ["accept", "content-type", "cookie", "last-event-id"]) {
    const v = request.headers.get(name);
    if (v) headers.set(name, v);
  }
  let res: Response;
  try {
    res = await fetch(`${process.env.SESSIOND_URL}/${params.path ?? ""}${new URL(request.url).search}`, {
      method: request.method,
      headers,
      body: request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer(),
    });
  } catch {
    return new Response(null, { status: 502 });
  }
  const out = new Headers();
  for (const name of ["content-type", "cache-control", "retry-after", "x-request-id"]) {
    const v = res.headers.get(name);
    if (v) out.set(name, v);
  }
  for (const c of res.headers.getSetCookie()) out.append("set-cookie", c);
  return new Response(res.body, { status: res.status, headers: out });
};
