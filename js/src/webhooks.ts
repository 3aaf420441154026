// @sessiond/js/webhooks: verify sessiond's webhook deliveries (Standard
// Webhooks) with Web Crypto alone, so it runs wherever the server entry
// runs (Node, edge runtimes, Workers, Deno, Bun).
import type { components } from "./openapi.js";

type Session = components["schemas"]["Session"];

/** The type of a session event: `session.created` or `session.` + the new status. */
export type SessionEventType = "session.created" | "session.ended" | "session.revoked" | "session.replaced" | "session.evicted" | "session.expired";

/** SessionEvent is the payload sessiond delivers. */
export interface SessionEvent {
  type: SessionEventType;
  timestamp: string;
  data: { session: Session; old_status: Session["status"] | null; actor: string };
}

/** WebhookVerificationError: the delivery is not from sessiond, was changed, or is too old. Answer it 4xx. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

const bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

/**
 * verifyWebhook reads the request's body once and returns the event when
 * one of the `webhook-signature` entries (several during a secret's
 * rotation) is an HMAC-SHA256 of `id.timestamp.body` with the `whsec_`
 * secret, and the timestamp is within `toleranceSeconds` (default 300) of
 * now. Signatures are checked by Web Crypto's `verify`, in constant time.
 * Deduplicate on the `webhook-id` header: delivery is at least once.
 */
export async function verifyWebhook(request: Request, options: { secret: string; toleranceSeconds?: number }): Promise<SessionEvent> {
  const h = request.headers;
  const id = h.get("webhook-id");
  const ts = h.get("webhook-timestamp") ?? "";
  const signatures = h.get("webhook-signature");
  if (!id || !signatures || !/^\d+$/.test(ts)) throw new WebhookVerificationError("missing webhook headers");
  if (Math.abs(Date.now() / 1000 - Number(ts)) > (options.toleranceSeconds ?? 300)) throw new WebhookVerificationError("timestamp outside the tolerance");
  const body = await request.text();
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("raw", bytes(options.secret.replace(/^whsec_/, "")), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  } catch {
    throw new Error("verifyWebhook: the secret is not whsec_ and base64");
  }
  const signed = new TextEncoder().encode(`${id}.${ts}.${body}`);
  for (const entry of signatures.split(" ")) {
    const [version, sig] = entry.split(",");
    if (version !== "v1" || !sig) continue;
    let mac: Uint8Array<ArrayBuffer>;
    try {
      mac = bytes(sig);
    } catch {
      continue;
    }
    if (await crypto.subtle.verify("HMAC", key, mac, signed)) return JSON.parse(body) as SessionEvent;
  }
  throw new WebhookVerificationError("no valid signature");
}
