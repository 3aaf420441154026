import { createApp } from "vue";
import { SignOutButton, sessiondPlugin, useAuth, useSessiond, useSessiondState } from "@sessiond/js/vue";

const Home = {
  components: { SignOutButton },
  setup() {
    const { isLoaded, isSignedIn, sessionId, userId } = useAuth();
    const state = useSessiondState();
    const sessiond = useSessiond();
    const goodbye = () => (document.querySelector("[data-testid=callback]").textContent = "signOutCallback ran");
    return { isLoaded, isSignedIn, sessionId, userId, state, sessiond, goodbye };
  },
  template: `
    <p v-if="!isLoaded" data-testid="status">Loading…</p>
    <template v-else-if="!sessionId">
      <p data-testid="status">Signed out</p>
      <form method="post" action="/sign-in" data-testid="sign-in">
        <input type="hidden" name="return" value="/vue.html" />
        <label>User name <input name="user_id" required /></label>
        <button type="submit">Sign in</button>
        <p class="note">Any name will do: checking a password is the app's job, not sessiond's, and this demo skips it.</p>
      </form>
    </template>
    <template v-else>
      <p data-testid="status">Signed in as <b>{{ userId }}</b> <small>({{ sessionId }})</small></p>
      <section data-testid="seed-default"><h3>Default</h3><SignOutButton /></section>
      <section data-testid="seed-slot">
        <h3>Scoped slot with handler</h3>
        <SignOutButton v-slot="{ handler }"><button @click="handler">Sign out (slot)</button></SignOutButton>
      </section>
      <section data-testid="seed-session">
        <h3>Just this account, with a callback</h3>
        <SignOutButton :sign-out-options="{ sessionId }" :sign-out-callback="goodbye" />
      </section>
      <section data-testid="seed-redirect"><h3>Redirect</h3><SignOutButton redirect-url="/goodbye.html" /></section>
    </template>
    <p class="error" data-testid="error" v-if="state.error">
      {{ state.status === "unavailable" ? "Cannot reach the sign-in service (" + state.error.code + "). You are still signed in; try again in a moment." : state.error.code }}
    </p>
    <p data-testid="callback"></p>
  `,
};

createApp({
  components: { Home },
  template: `<nav><a href="/">React</a> <a href="/vue.html">Vue</a> <a href="/plain.html">Plain HTML</a></nav><h1>sessiond demo · Vue</h1><Home />`,
})
  .use(sessiondPlugin, { url: "/api/auth" })
  .mount("#app");
