// sessiond behind the app's origin: /api/auth/* goes to SESSIOND_URL (the
// sign-out button's calls); what goes in and comes back is proxyRequest's
// rule (@sessiond/js/server).
import type { APIRoute } from "astro";
import { proxyRequest } from "@sessiond/js/server";

export const ALL: APIRoute = ({ request }) => proxyRequest(request, { prefix: "/api/auth" });
