// What `@sessiond/js/server` resolves to in a browser bundle (the package's
// `browser` export condition): an error at import, so a bundler that pulls
// the server client (and with it SESSIOND_API_KEY) into a page fails loudly.
throw new Error("@sessiond/js/server runs on servers only; in a page use @sessiond/js, @sessiond/js/react or @sessiond/js/vue");
export {};
