// Type-level checks of the typed calls (run by `npm run typecheck`): a call
// the contract does not have, or with the wrong parameters, does not compile.
import type { Http } from "../src/core/http.js";
import type { Session } from "../src/index.js";

export async function typedCalls(http: Http): Promise<void> {
  const me: Session = await http.call("GET", "/session");
  const list = await http.call("GET", "/clients/{id}/sessions", { path: { id: me.client_id }, query: { limit: 100 } });
  const first: Session | undefined = list.data[0];
  const next: string | null = list.next_cursor;
  const ended = await http.call("DELETE", "/session", { query: { session_id: me.id, redirect_url: "/" } });
  const redirect: string | null = ended.redirect_url;
  await http.call("POST", "/session/active", { body: { session_id: me.id } });
  void [first, next, redirect];

  // @ts-expect-error no GET /sessions in the contract
  await http.call("GET", "/sessions");
  // @ts-expect-error the path parameter is required
  await http.call("GET", "/clients/{id}/sessions");
  // @ts-expect-error no such query parameter
  await http.call("DELETE", "/session", { query: { sessionId: me.id } });
  // @ts-expect-error the body is required
  await http.call("POST", "/session/active");
  // @ts-expect-error GET /session takes no body
  await http.call("GET", "/session", { body: {} });
  // @ts-expect-error the answer is a Session, not a list
  const wrong: { data: Session[] } = await http.call("GET", "/session");
  void wrong;
}
