"use server";
import { redirectPath, signIn, signOut } from "@sessiond/js/next";
import { redirect } from "next/navigation";

// Stands in for the app's real credential check: whoever is typed in.
export async function signInAction(form: FormData) {
  const userId = String(form.get("user_id") ?? "").trim();
  if (!userId) redirect("/sign-in");
  await signIn({ userId });
  // sessiond's own rule for return paths: never "//host", "/\\host" or "/.//host".
  redirect(redirectPath(String(form.get("redirect_url") ?? ""), "/"));
}

export async function signOutAction() {
  await signOut({ redirectUrl: "/" });
}
