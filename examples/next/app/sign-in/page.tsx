import { signInAction } from "../actions";

export default async function SignIn({ searchParams }: { searchParams: Promise<{ redirect_url?: string }> }) {
  const { redirect_url = "/" } = await searchParams;
  return (
    <main>
      <h1>Sign in</h1>
      <form action={signInAction} data-testid="sign-in">
        <input name="user_id" placeholder="user id" />
        <input type="hidden" name="redirect_url" value={redirect_url} />
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
