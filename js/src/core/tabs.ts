// Cross-tab sync: a tab that changed something tells the others, which
// load again. A BroadcastChannel where there is one, else the storage event.
import type { SessiondEnv, TabChannel } from "./env.js";

export interface Tabs {
  /** Tells the other tabs that the state changed. */
  announce(): void;
  /** Starts hearing the other tabs (while anyone listens to this client). */
  start(): void;
  stop(): void;
}

export function createTabs(env: Pick<SessiondEnv, "BroadcastChannel" | "storage">, name: string, onNews: () => void): Tabs {
  const tabId = Math.random().toString(36).slice(2);
  const Channel = env.BroadcastChannel;
  let channel: TabChannel | null = null;
  let stopStorage: (() => void) | undefined;
  return {
    announce() {
      const msg = { from: tabId, at: Date.now() };
      if (Channel) {
        const ch = channel ?? new Channel(name);
        ch.postMessage(msg);
        if (ch !== channel) ch.close();
      } else env.storage?.write(name, JSON.stringify(msg));
    },
    start() {
      if (Channel) {
        channel = new Channel(name);
        channel.onmessage = onNews;
      } else stopStorage = env.storage?.listen(name, onNews);
    },
    stop() {
      channel?.close();
      channel = null;
      stopStorage?.();
      stopStorage = undefined;
    },
  };
}
