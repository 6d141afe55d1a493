// Staff sign-in form shared by the console and its 战报 page: POST /api/v1/auth/token with the
// form's username and password, keep the token under qm.staff for this tab, then hand it on.
import { api } from "/static/viewer/api.js";

export function bindStaffSignIn(form, errorNode, signedIn) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = new FormData(event.target);
    try {
      const data = await api("/api/v1/auth/token", {
        method: "POST",
        body: { username: fields.get("username"), password: fields.get("password") },
      });
      sessionStorage.setItem("qm.staff", data.token);
      signedIn(data.token);
    } catch (error) {
      errorNode.textContent = error.message;
    }
  });
}
