// sessiond behind the app's origin: /api/auth/* goes to SESSIOND_URL at
// run time (the page's client calls, the event stream). Only the headers
// sessiond reads go in; its Set-Cookie headers come back one by one, verbatim.
export const dynamic = "force-dynamic";

async function proxy(req: Request, { params }: { params: Promise<{ path: string[] }> }) {
  const { path } = await params;
  const headers = new Headers();
  for (const name of ["accept", "content-type", "cookie", "last-event-id"]) {
    const v = req.headers.get(name);
    if (v) headers.set(name, v);
  }
  let res: Response;
  try {
    res = await fetch(`${process.env.SESSIOND_URL}/${path.map(encodeURIComponent).join("/")}${new URL(req.url).search}`, {
      method: req.method,
      headers,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer(),
      cache: "no-store",
      signal: req.signal,
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
}

export { proxy as GET, proxy as POST, proxy as DELETE };
