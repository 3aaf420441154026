// sessiond behind the app's origin: /api/auth/* goes to SESSIOND_URL at
// run time (the page's client calls, the event stream); what goes in and
// comes back is proxyRequest's rule (@sessiond/js/server).
import { proxyRequest } from "@sessiond/js/server";

export const dynamic = "force-dynamic";

const proxy = (req: Request) => proxyRequest(req, { prefix: "/api/auth" });

export { proxy as GET, proxy as POST, proxy as DELETE };
