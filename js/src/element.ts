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
import { createSessiond, signOutOnce, type Sessiond, type SignOutClick } from "./index.js";

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
  constructor() {
    super();
    // The slot's fallback shows only while the element has no children of
    // its own, however late the parser adds them; style it with ::part(button).
    this.attachShadow({ mode: "open" }).innerHTML = `<slot><button type="button" part="button">Sign out</button></slot>`;
    clicks.set(this, signOutOnce(() => click(this)));
  }

  connectedCallback(): void {
    this.addEventListener("click", this);
  }

  disconnectedCallback(): void {
    this.removeEventListener("click", this);
  }

  /** The element is its own click listener: a click signs out (once at a time). */
  handleEvent(e: Event): void {
    e.preventDefault();
    clicks.get(this)!();
  }
}

// Each element's click handler; kept off the element, as its busy state is nobody else's.
const clicks = new WeakMap<SessiondSignOut, () => void>();

function click(el: SessiondSignOut): SignOutClick | undefined {
  const url = el.getAttribute("url");
  if (!url) {
    emit(el, "sessiond:error", new Error("<sessiond-sign-out> needs a url attribute"));
    return undefined;
  }
  return {
    client: clientFor(url),
    signOutOptions: { sessionId: el.getAttribute("session-id") || undefined, redirectUrl: el.getAttribute("redirect-url") || undefined },
    // After the answer and before any navigation: the page hears of it first.
    onSignedOut: (res) => emit(el, "sessiond:signed-out", res),
    onError: (err) => emit(el, "sessiond:error", err),
    onBusy: (busy) => (busy ? el.setAttribute("aria-busy", "true") : el.removeAttribute("aria-busy")),
  };
}

function emit(el: HTMLElement, type: string, detail: unknown): void {
  el.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
}

if (typeof customElements !== "undefined" && !customElements.get("sessiond-sign-out")) {
  customElements.define("sessiond-sign-out", SessiondSignOut);
}

declare global {
  interface HTMLElementTagNameMap {
    "sessiond-sign-out": SessiondSignOut;
  }
}
