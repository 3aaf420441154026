// <sessiond-sign-out>: sign-out for plain HTML and Astro, registered on
// import. It wraps the page's own button (Astro's asChild); empty, it shows
// <button>Sign out</button> (in its shadow root, part "button").
//
//   <sessiond-sign-out url="/api/auth" redirect-url="/" session-id="sess_...">
//     <button>Sign out</button>
//   </sessiond-sign-out>
//
// On success it dispatches `sessiond:signed-out` (detail: sessiond's answer)
// before navigating to the echoed redirect URL; on failure
// `sessiond:error` (detail: the SessiondError). Both bubble.
import { createSessiond, type Sessiond } from "./index.js";

export * from "./index.js";

const clients = new Map<string, Sessiond>();

/** clientFor gives every element of one sessiond URL the same client. */
export function clientFor(url: string): Sessiond {
  let c = clients.get(url);
  if (!c) clients.set(url, (c = createSessiond({ url })));
  return c;
}

const Base: typeof HTMLElement = typeof HTMLElement === "undefined" ? (class {} as typeof HTMLElement) : HTMLElement;

export class SessiondSignOut extends Base {
  #busy = false;

  constructor() {
    super();
    // The slot's fallback shows only while the element has no children of
    // its own, however late the parser adds them; style it with ::part(button).
    this.attachShadow({ mode: "open" }).innerHTML = `<slot><button type="button" part="button">Sign out</button></slot>`;
  }

  connectedCallback(): void {
    this.addEventListener("click", this.#onClick);
  }

  disconnectedCallback(): void {
    this.removeEventListener("click", this.#onClick);
  }

  #onClick = (e: Event): void => {
    e.preventDefault();
    if (this.#busy) return;
    const url = this.getAttribute("url");
    if (!url) {
      this.#emit("sessiond:error", new Error("<sessiond-sign-out> needs a url attribute"));
      return;
    }
    this.#busy = true;
    this.setAttribute("aria-busy", "true");
    const sessionId = this.getAttribute("session-id") || undefined;
    const redirectUrl = this.getAttribute("redirect-url") || undefined;
    // The callback runs after the answer and before any navigation: the page hears of it first.
    clientFor(url)
      .signOut((res) => this.#emit("sessiond:signed-out", res), { sessionId, redirectUrl })
      .catch((err) => this.#emit("sessiond:error", err))
      .finally(() => {
        this.#busy = false;
        this.removeAttribute("aria-busy");
      });
  };

  #emit(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

if (typeof customElements !== "undefined" && !customElements.get("sessiond-sign-out")) {
  customElements.define("sessiond-sign-out", SessiondSignOut);
}

declare global {
  interface HTMLElementTagNameMap {
    "sessiond-sign-out": SessiondSignOut;
  }
}
