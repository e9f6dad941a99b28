/* Sign in: the key goes to the server once, in a POST; the server answers with a session cookie. */
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const params = TH.params();
  const next = params.get("next");
  if (next && next.startsWith("/ui/") && !next.startsWith("//")) document.getElementById("next").value = next;
  document.getElementById("failed").hidden = params.get("failed") !== "1";
  const info = await TH.ready;
  if (info && info.key_set === false) document.getElementById("nokey").hidden = false;
  document.getElementById("key").focus();
});
