import { api, el } from "/static/viewer/api.js";
import { viewerSession } from "/static/viewer/session.js";
import { t, lang } from "../shared/i18n.js";

const root = document.getElementById("streamer");
const streamerId = Number(root.dataset.streamer);
const STATUS = { scheduled: t("预告"), live: t("直播中"), ended: t("已结束") };
const button = document.getElementById("follow");

function renderFollow({ following, followers }) {
  button.dataset.following = following ? "1" : "0";
  button.textContent = following ? t("已关注") : t("关注");
  button.setAttribute("aria-pressed", following ? "true" : "false");
  button.title = following ? t("再点一次取消关注") : "";
  document.getElementById("followers").textContent = String(followers);
}

async function main() {
  const profile = await api(`/api/v1/streamers/${streamerId}`);
  document.getElementById("rooms").replaceChildren(...profile.rooms.map((r) => {
    const href = r.status === "ended" && r.has_replay ? `/live/${r.id}/replay/` : `/live/${r.id}/`;
    return el("li", { class: "room-card" }, el("a", { href },
      el("span", { class: `badge ${r.status}`, text: STATUS[r.status] }),
      el("b", { text: r.title }),
      el("span", { class: "muted", text: new Date(r.scheduled_start).toLocaleString(lang()) })));
  }));
  const session = await viewerSession(root.dataset.org);
  // The button says what is true for this viewer, also after a reload.
  renderFollow(await api(`/api/v1/streamers/${streamerId}/follow`, { token: session.token }));
  button.addEventListener("click", async () => {
    const following = button.dataset.following === "1";
    const data = await api(`/api/v1/streamers/${streamerId}/follow`, { method: following ? "DELETE" : "POST", token: session.token });
    renderFollow(data);
  });
  root.dataset.ready = "1";
}

main();
