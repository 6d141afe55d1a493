// The viewer's privacy notice and self-service (PIPL arts. 44-47): every consent with a
// switch to give or withdraw it, recorded with the notice version as evidence.

import { api, el } from "/static/viewer/api.js";
import { viewerSession } from "/static/viewer/session.js";
import { t } from "../shared/i18n.js";

const root = document.getElementById("privacy");
let session = null;

function toast(text) {
  const node = document.getElementById("toast");
  node.textContent = text;
  node.classList.add("on");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => node.classList.remove("on"), 2500);
}

function renderConsents(rows) {
  document.getElementById("consents").replaceChildren(...rows.map((row) => {
    const box = el("input", { type: "checkbox", checked: row.granted, "data-purpose": row.purpose });
    box.addEventListener("change", async () => {
      box.disabled = true;
      try {
        renderConsents(await api("/api/v1/viewer/consents", {
          method: "POST",
          token: session.token,
          body: { purpose: row.purpose, granted: box.checked },
        }));
        toast(box.checked ? t("已同意") : t("已撤回同意"));
      } catch (error) {
        box.checked = !box.checked;
        box.disabled = false;
        toast(error.message);
      }
    });
    return el("li", { class: "consent" },
      el("label", { class: "grow" }, el("b", { text: row.label }),
        el("span", { class: "muted", text: row.granted ? t("已同意") : t("未同意") })),
      box);
  }));
}

document.getElementById("export").addEventListener("click", async () => {
  const response = await api("/api/v1/viewer/export", { token: session.token, raw: true });
  if (!response.ok) { toast(t("导出失败，请重试")); return; }
  const name = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name ? name[1] : "my-data.json" });
  document.body.append(link);
  link.click();
  link.remove();
  toast(t("已导出"));
});

document.getElementById("erase").addEventListener("click", () => {
  document.getElementById("erase-confirm").hidden = false;
});
document.getElementById("erase-no").addEventListener("click", () => {
  document.getElementById("erase-confirm").hidden = true;
});
document.getElementById("erase-yes").addEventListener("click", async () => {
  try {
    await api("/api/v1/viewer/erase", { method: "POST", token: session.token, body: { confirm: true } });
  } catch (error) { toast(error.message); return; }
  // Nothing of the old session stays on this device either.
  localStorage.removeItem(`qm.viewer.${root.dataset.org}`);
  document.getElementById("erase-confirm").hidden = true;
  for (const id of ["export", "erase", "consents"]) document.getElementById(id).hidden = true;
  document.getElementById("erased").hidden = false;
});

async function main() {
  session = await viewerSession(root.dataset.org);
  renderConsents(await api("/api/v1/viewer/consents", { token: session.token }));
  root.dataset.ready = "1";
}

main().catch((error) => toast(error.message || t("加载失败")));
