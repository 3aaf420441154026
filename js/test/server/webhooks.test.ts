// verifyWebhook against sessiond's real deliveries (the multi-mode sessiond
// of test/server/setup.ts delivers to a receiver there), cross-checked with
// the standardwebhooks package.
import { Webhook } from "standardwebhooks";
import { describe, expect, inject, it } from "vitest";
import { createSessiondClient } from "../../src/server.js";
import { verifyWebhook, WebhookVerificationError } from "../../src/webhooks.js";

const secret = inject("webhookSecret");
const receiver = inject("receiver");

interface Delivery {
  headers: Record<string, string>;
  body: string;
}

async function deliveriesOf(sessionId: string): Promise<Delivery[]> {
  const until = Date.now() + 15000; // a bound that only catches deliveries that never come
  for (;;) {
    const all = (await (await fetch(receiver)).json()) as Delivery[];
    const mine = all.filter((d) => JSON.parse(d.body).data.session.id === sessionId);
    if (mine.length >= 2 || Date.now() > until) return mine;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const asRequest = (d: Delivery, patch: { body?: string; headers?: Record<string, string> } = {}) =>
  new Request("https://app.example.test/hooks/sessiond", {
    method: "POST",
    headers: { "content-type": "application/json", "webhook-id": d.headers["webhook-id"], "webhook-timestamp": d.headers["webhook-timestamp"], "webhook-signature": d.headers["webhook-signature"], ...patch.headers },
    body: patch.body ?? d.body,
  });

describe("verifyWebhook", () => {
  it("accepts sessiond's real deliveries, as standardwebhooks does, and refuses them changed", async () => {
    const client = createSessiondClient({ url: inject("multi"), apiKey: inject("apiKey") });
    const s = await client.signIn({ userId: "hooked" });
    await client.sessions.end(s.session.id);
    const got = await deliveriesOf(s.session.id);
    expect(got.map((d) => JSON.parse(d.body).type)).toEqual(["session.created", "session.revoked"]);
    const theirs = new Webhook(secret.replace(/^whsec_/, ""));
    for (const d of got) {
      const event = await verifyWebhook(asRequest(d), { secret });
      expect(event).toEqual(theirs.verify(d.body, d.headers));
      expect(event.data.session.id).toBe(s.session.id);
    }
    const d = got[1];
    const tampered = d.body.replace('"revoked"', '"active"');
    expect(tampered).not.toBe(d.body);
    await expect(verifyWebhook(asRequest(d, { body: tampered }), { secret })).rejects.toBeInstanceOf(WebhookVerificationError);
    await expect(verifyWebhook(asRequest(d), { secret: "whsec_" + btoa("another secret of 24 bytes!") })).rejects.toBeInstanceOf(WebhookVerificationError);
    await expect(verifyWebhook(asRequest(d, { headers: { "webhook-id": "evt_other" } }), { secret })).rejects.toBeInstanceOf(WebhookVerificationError);
  });

  it("agrees with standardwebhooks on timestamps, rotation and malformed signatures", async () => {
    const theirs = new Webhook(secret.replace(/^whsec_/, ""));
    const body = JSON.stringify({ type: "session.created", timestamp: new Date().toISOString(), data: { session: { id: "sess_x" }, old_status: null, actor: "test" } });
    const signed = (at: Date) => ({ headers: { "webhook-id": "evt_1", "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": theirs.sign("evt_1", at, body) }, body });
    const now = signed(new Date());
    expect(await verifyWebhook(asRequest(now), { secret })).toEqual(JSON.parse(body));

    for (const at of [new Date(Date.now() - 6 * 60 * 1000), new Date(Date.now() + 6 * 60 * 1000)]) {
      const d = signed(at);
      expect(() => theirs.verify(d.body, d.headers)).toThrow();
      await expect(verifyWebhook(asRequest(d), { secret })).rejects.toThrow(/tolerance/);
    }
    const old = signed(new Date(Date.now() - 4 * 60 * 1000)); // within 5 minutes
    expect(await verifyWebhook(asRequest(old), { secret })).toEqual(theirs.verify(old.body, old.headers));

    // rotation: the old secret's signature and the new one's, space separated, in either order
    const other = new Webhook(btoa("the previous secret, 32 bytes..."));
    const t = new Date();
    const both = [other.sign("evt_1", t, body), theirs.sign("evt_1", t, body)];
    for (const sigs of [both.join(" "), both.reverse().join(" "), "v1,not*base64 " + theirs.sign("evt_1", t, body)]) {
      const d = { headers: { ...signed(t).headers, "webhook-signature": sigs }, body };
      expect(await verifyWebhook(asRequest(d), { secret })).toEqual(theirs.verify(d.body, d.headers));
    }
    for (const sigs of [other.sign("evt_1", t, body), "v2," + theirs.sign("evt_1", t, body).slice(3), ""]) {
      const d = { headers: { ...signed(t).headers, "webhook-signature": sigs }, body };
      expect(() => theirs.verify(d.body, d.headers)).toThrow();
      await expect(verifyWebhook(asRequest(d), { secret })).rejects.toBeInstanceOf(WebhookVerificationError);
    }
  });

  it("reads the body once: a request whose body was already read is refused", async () => {
    const theirs = new Webhook(secret.replace(/^whsec_/, ""));
    const t = new Date();
    const req = asRequest({ headers: { "webhook-id": "evt_2", "webhook-timestamp": String(Math.floor(t.getTime() / 1000)), "webhook-signature": theirs.sign("evt_2", t, "{}") }, body: "{}" });
    await req.text();
    await expect(verifyWebhook(req, { secret })).rejects.toThrow();
  });
});
