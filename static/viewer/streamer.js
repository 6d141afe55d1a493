import { api, el } from "/static/viewer/api.js";
import { viewerSession } from "/static/viewer/session.js";
import { t, lang } from "../shared/i18n.js";

const root = document.getElementById("streamer");
const streamerId = Number(root.dataset.streamer);
const STATUS = { scheduled: t("预告"), live: t("直播中"), ended: t("已结束") };

async function main() {
  const profile = await api(`/api/v1/streamers/${streamerId}`);
  document.getElementById("rooms").replaceChildren(...profile.rooms.map((r) => {
    const href = r.status === "ended" && r.has_replay ? `/live/${r.id}/replay/` : `/live/${r.id}/`;
    return el("li", { class: "room-card" }, el("a", { href },
      el("span", { class: `badge ${r.status}`, text: STATUS[r.status] }),
      el("b", { text: r.title }),
      el("span", { class: "muted", text: new Date(r.scheduled_start).toLocaleString(lang()) })));
  }));
  document.getElementById("follow").addEventListener("click", async () => {
    const session = await viewerSession(root.dataset.org);
    const data = await api(`/api/v1/streamers/${streamerId}/follow`, { method: "POST", token: session.token });
    document.getElementById("followers").textContent = String(data.followers);
    document.getElementById("follow").textContent = t("已关注");
  });
}

main();
