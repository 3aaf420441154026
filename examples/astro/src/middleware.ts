// Astro.locals.auth(): who sent the request (SESSIOND_URL, SESSIOND_API_KEY from the environment).
import { sessiondMiddleware } from "@sessiond/js/astro";

export const onRequest = sessiondMiddleware();
