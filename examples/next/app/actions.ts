"use server";
import { signIn, signOut } from "@sessiond/js/next";
import { redirect } from "next/navigation";

// Stands in for the app's real credential check: whoever is typed in.
export async function signInAction(form: FormData) {
  const userId = String(form.get("user_id") ?? "").trim();
  if (!userId) redirect("/sign-in");
  await signIn({ userId });
  const to = String(form.get("redirect_url") ?? "/");
  redirect(to.startsWith("/") && !to.startsWith("//") ? to : "/");
}

export async function signOutAction() {
  await signOut({ redirectUrl: "/" });
}
