// The invite poster (邀请海报): rendered by the server for this viewer (its QR credits their
// invite code), shown, saved to the album or previewed to share. The invite code from the
// response is kept for the room's share card.
const { getClient } = require("../../utils/app-client");

// The client's config (config.js in the app; the tests' own in jest).
const cfg = () => getClient().config;

Component({
  data: { phase: "loading", errorText: "", image: "" },
  methods: {
    onLoad(query) {
      this.roomId = Number((query || {}).id) || null;
      this.clipId = Number((query || {}).clip) || null;
      this.loaded = this.load();
      return this.loaded;
    },

    async load() {
      const client = getClient();
      this.setData({ phase: "loading" });
      try {
        const file = await client.download(`/api/v1/rooms/${this.roomId}/invite-poster${this.clipId ? `?clip=${this.clipId}` : ""}`);
        const code = file.header["X-Invite-Code"] || file.header["x-invite-code"];
        if (code) wx.setStorageSync(`qm.inviteCode.${cfg().org}`, code);
        this.setData({ phase: "ready", image: file.tempFilePath });
      } catch (error) {
        this.setData({ phase: "error", errorText: error.message || "海报生成失败，请重试" });
      }
    },

    retry() {
      this.loaded = this.load();
      return this.loaded;
    },

    preview() {
      wx.previewImage({ urls: [this.data.image], current: this.data.image });
    },

    save() {
      wx.saveImageToPhotosAlbum({
        filePath: this.data.image,
        success: () => wx.showToast({ title: "已保存到相册", icon: "none" }),
        fail: () => wx.showToast({ title: "保存失败，可长按图片发送给好友", icon: "none" }),
      });
    },

    onShareAppMessage() {
      const code = wx.getStorageSync(`qm.inviteCode.${cfg().org}`) || "";
      return { title: "邀请你来看直播", path: `/pages/room/room?id=${this.roomId}${code ? `&invite=${code}` : ""}` };
    },
  },
});
