// Streamer home (主播主页): profile, follow, upcoming and past rooms (replays).
const { getClient } = require("../../utils/app-client");
const { dateTime, STATUS } = require("../../utils/format");

function card(room) {
  return {
    id: room.id,
    title: room.title,
    cover: room.cover || "",
    status: room.status,
    statusText: room.status === "ended" ? (room.has_replay ? "看回放" : "已结束") : STATUS[room.status] || room.status,
    when: dateTime(room.started_at || room.scheduled_start),
  };
}

Component({
  data: { phase: "loading", errorText: "", streamer: null, following: false, followers: 0, upcoming: [], past: [] },
  methods: {
    onLoad(query) {
      this.streamerId = Number((query || {}).id) || null;
      if (!this.streamerId) {
        this.setData({ phase: "error", errorText: "没有找到这位主播" });
        return Promise.resolve();
      }
      this.loaded = this.load();
      return this.loaded;
    },

    async load() {
      const client = getClient();
      this.setData({ phase: "loading" });
      try {
        const profile = await client.api(`/api/v1/streamers/${this.streamerId}`, { auth: false });
        let following = false;
        let followers = profile.followers;
        try {
          const follow = await client.api(`/api/v1/streamers/${this.streamerId}/follow`);
          following = follow.following;
          followers = follow.followers;
        } catch (error) {
          /* not signed in yet: the button still works (it signs in) */
        }
        const rooms = profile.rooms.map(card);
        wx.setNavigationBarTitle({ title: profile.name });
        this.setData({
          phase: "ready",
          streamer: { id: profile.id, name: profile.name, bio: profile.bio },
          following,
          followers,
          // soonest first for what is coming, newest first for what has been
          upcoming: rooms.filter((r) => r.status !== "ended").reverse(),
          past: rooms.filter((r) => r.status === "ended"),
        });
      } catch (error) {
        this.setData({ phase: "error", errorText: error.message || "加载失败，请重试" });
      }
    },

    retry() {
      this.loaded = this.load();
      return this.loaded;
    },

    async toggleFollow() {
      try {
        const data = await getClient().api(`/api/v1/streamers/${this.streamerId}/follow`, {
          method: this.data.following ? "DELETE" : "POST",
        });
        this.setData({ following: data.following, followers: data.followers });
        wx.showToast({ title: data.following ? "已关注，开播早知道" : "已取消关注", icon: "none" });
      } catch (error) {
        wx.showToast({ title: error.message, icon: "none" });
      }
    },

    openRoom(e) {
      wx.navigateTo({ url: `/pages/room/room?id=${e.currentTarget.dataset.room}` });
    },

    onShareAppMessage() {
      const s = this.data.streamer || {};
      return { title: `${s.name || "主播"}的直播间`, path: `/pages/streamer/streamer?id=${this.streamerId}` };
    },
  },
});
