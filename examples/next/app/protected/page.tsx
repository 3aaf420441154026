import { auth } from "@sessiond/js/next";
import { signOutAction } from "../actions";

export default async function Protected() {
  const { userId, sessionId } = await auth.protect(); // the middleware already redirected the signed out
  return (
    <main>
      <h1 data-testid="server-status">Protected page for {userId}</h1>
      <p data-testid="session-id">{sessionId}</p>
      <form action={signOutAction}>
        <button type="submit">Sign out</button>
      </form>
    </main>
  );
}
