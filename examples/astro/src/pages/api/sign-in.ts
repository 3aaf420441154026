// Sign-in with @sessiond/js/server, as any fetch server does it: sessiond's
// Set-Cookie headers appended to the answer one by one, verbatim. (Stands
// in for the app's real credential check: whoever is typed in.)
import type { APIRoute } from "astro";
import { createSessiondClient } from "@sessiond/js/server";

const sessiond = createSessiondClient();

export const POST: APIRoute = async ({ request }) => {
  const userId = String((await request.formData()).get("user_id") ?? "").trim();
  if (!userId) return new Response(null, { status: 303, headers: { location: "/" } });
  const { setCookie } = await sessiond.signIn({ userId, request });
  const headers = new Headers({ location: "/" });
  for (const c of setCookie) headers.append("set-cookie", c);
  return new Response(null, { status: 303, headers });
};
