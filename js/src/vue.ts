// Vue 3 adapter: a plugin that provides one client, Clerk's useAuth()
// composable and <SignOutButton> with its default slot and `{ handler }`.
import {
  Comment,
  cloneVNode,
  computed,
  defineComponent,
  h,
  inject,
  isVNode,
  shallowRef,
  type App,
  type ComputedRef,
  type InjectionKey,
  type PropType,
  type ShallowRef,
  type VNode,
} from "vue";
import { authState, createSessiond, signOutOnce, type InitialState, type Sessiond, type SessiondState, type SignOutOptions } from "./index.js";

export * from "./index.js";

interface Provided {
  client: Sessiond;
  state: Readonly<ShallowRef<SessiondState>>;
}

const KEY: InjectionKey<Provided> = Symbol("sessiond");

export interface SessiondPluginOptions {
  /** sessiond's base URL (absolute, or a same-origin path such as `/api/auth`). */
  url?: string;
  /** An existing client instead of `url`. */
  client?: Sessiond;
  /** How to navigate after a sign-out with a redirect URL (e.g. `(to) => router.push(to)`). */
  navigate?: (url: string) => void;
  /** What the server rendered with: the first render is already signed in, signed out or unavailable (no flash); the client revalidates in the background. */
  initialState?: InitialState;
  /** Called when the page sees the signed-in session change (e.g. to reload server-rendered content). */
  onSessionChange?: (state: SessiondState) => void;
}

/** sessiondPlugin: `app.use(sessiondPlugin, { url: "/api/auth" })`. Loads who is signed in and keeps it fresh. */
export const sessiondPlugin = {
  install(app: App, options: SessiondPluginOptions): void {
    const client = options.client ?? createSessiond({ url: required(options.url), navigate: options.navigate, initialState: options.initialState, onSessionChange: options.onSessionChange });
    const state = shallowRef(client.state);
    const off = client.addListener((s) => (state.value = s));
    (app as App & { onUnmount?: (fn: () => void) => void }).onUnmount?.(off);
    app.provide(KEY, { client, state });
    if (!client.state.isLoaded || options.initialState) void client.load(); // with initialState: revalidate in the background
  },
};

function required(url: string | undefined): string {
  if (!url) throw new Error("sessiondPlugin needs url or client");
  return url;
}

function use(): Provided {
  const p = inject(KEY, null);
  if (!p) throw new Error("@sessiond/js/vue: app.use(sessiondPlugin, { url }) first");
  return p;
}

/** useSessiond is the client (Clerk's useClerk): signOut, setActive, signOutOthers. */
export function useSessiond(): Sessiond {
  return use().client;
}

/** useSessiondState is the reactive state snapshot (status, session, accounts, error). */
export function useSessiondState(): Readonly<ShallowRef<SessiondState>> {
  return use().state;
}

/** useAuth is Clerk's: refs `isLoaded`, `isSignedIn`, `sessionId`, `userId` (undefined until loaded, null when signed out). */
export function useAuth(): {
  isLoaded: ComputedRef<boolean>;
  isSignedIn: ComputedRef<boolean | undefined>;
  sessionId: ComputedRef<string | null | undefined>;
  userId: ComputedRef<string | null | undefined>;
} {
  const { state } = use();
  const auth = computed(() => authState(state.value));
  return {
    isLoaded: computed(() => auth.value.isLoaded),
    isSignedIn: computed(() => auth.value.isSignedIn),
    sessionId: computed(() => auth.value.sessionId),
    userId: computed(() => auth.value.userId),
  };
}

/**
 * SignOutButton signs out on click. Without a slot it is `<button>Sign
 * out</button>`; a single element in the default slot becomes the button;
 * the scoped slot `{ handler }` lets you bind the click yourself. A double
 * click, or a handler bound twice, signs out once.
 */
export const SignOutButton = defineComponent({
  name: "SignOutButton",
  props: {
    signOutOptions: Object as PropType<SignOutOptions>,
    signOutCallback: Function as PropType<() => unknown>,
    redirectUrl: String,
  },
  setup(props, { slots }) {
    const { client } = use();
    const handler = signOutOnce(() => ({ client, ...props }));
    return () => {
      const nodes = (slots.default?.({ handler }) ?? []).filter((n: VNode) => n.type !== Comment);
      if (nodes.length === 1 && isVNode(nodes[0]) && (typeof nodes[0].type === "string" || typeof nodes[0].type === "object")) {
        return cloneVNode(nodes[0], { onClick: handler });
      }
      return h("button", { onClick: handler }, nodes.length ? nodes : "Sign out");
    };
  },
});
