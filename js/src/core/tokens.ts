// Token mode (tokenCache, for apps without cookies): every account's token
// under one key, the active one first, and loading the accounts from them.
import { SessiondError } from "../errors.js";
import type { Http } from "./http.js";
import type { Session, SessiondState, TokenCache } from "./types.js";

const cacheKey = "sessiond_tokens";

export interface Tokens {
  /** The cached tokens, active first; null until read. */
  readonly list: string[] | null;
  /** Session ID → its token, from the last load. */
  readonly of: Map<string, string>;
  /** The cached tokens (read once); a cache that cannot be read is `storage_unavailable`. */
  read(): Promise<string[]>;
  save(list: string[]): Promise<void>;
}

export function createTokens(cache: TokenCache): Tokens {
  let list: string[] | null = null;
  return {
    get list() {
      return list;
    },
    of: new Map(),
    async read() {
      if (list) return list;
      let raw: string | null | undefined;
      try {
        raw = await cache.getToken(cacheKey);
      } catch (err) {
        throw new SessiondError("storage_unavailable", 0, `the token cache could not be read: ${err instanceof Error ? err.message : String(err)}`);
      }
      return (list = (raw ?? "").split(" ").filter(Boolean));
    },
    async save(next) {
      list = next;
      if (next.length) await cache.saveToken(cacheKey, next.join(" "));
      else await cache.clearToken?.(cacheKey);
    },
  };
}

/**
 * tokenAccounts loads every account in the cache, the active one first: one
 * GET /session per token (they may be on different clients); dead tokens
 * are dropped from the cache.
 */
export async function tokenAccounts(http: Http, tokens: Tokens): Promise<Partial<SessiondState>> {
  const list = await tokens.read();
  const live: string[] = [];
  const accounts: Session[] = [];
  let session: Session | null = null;
  for (const token of list) {
    try {
      const s = await http.call("GET", "/session", { token });
      live.push(token);
      accounts.push(s);
      tokens.of.set(s.id, token);
      if (token === list[0]) session = s;
    } catch (err) {
      if (!(err instanceof SessiondError) || err.code !== "unauthenticated") throw err;
    }
  }
  if (live.length !== list.length) await tokens.save(live);
  return { status: session ? "signed-in" : "signed-out", isLoaded: true, session, accounts, error: null };
}
