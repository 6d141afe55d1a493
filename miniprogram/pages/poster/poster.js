// The invite poster (邀请海报): rendered by the server for this viewer (its QR credits their
// invite code), shown, saved to the album or previewed to share. The invite code from the
// response is kept for the room's share card. The poster greets friends with the viewer's
// name, so a viewer without one (a mini-program login brings none) is asked for it first,
// through WeChat's nickname input (头像昵称填写).
const { getClient } = require("../../utils/app-client");

// The client's config (config.js in the app; the tests' own in jest).
const cfg = () => getClient().config;

Component({
  data: { phase: "loading", errorText: "", image: "", mpCode: "", nickname: "", nameError: "", naming: false },
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
        const session = await client.ensureSession();
        if (!session.nickname) {
          this.setData({ phase: "name" });
          return;
        }
        const file = await client.download(`/api/v1/rooms/${this.roomId}/invite-poster${this.clipId ? `?clip=${this.clipId}` : ""}`);
        const code = file.header["X-Invite-Code"] || file.header["x-invite-code"];
        if (code) wx.setStorageSync(`qm.inviteCode.${cfg().org}`, code);
        this.setData({ phase: "ready", image: file.tempFilePath });
        // The viewer's own mini-program code (scene r=<room>&i=<invite>): scanned in WeChat it
        // opens this mini-program on the room. Optional: before the mini-program is published
        // WeChat has no code to give, and the poster's own QR still works.
        client
          .download(`/api/v1/rooms/${this.roomId}/mp-code${this.clipId ? `?clip=${this.clipId}` : ""}`)
          .then((code) => this.setData({ mpCode: code.tempFilePath }))
          .catch(() => this.setData({ mpCode: "" }));
      } catch (error) {
        this.setData({ phase: "error", errorText: error.message || "海报生成失败，请重试" });
      }
    },

    onNickname(e) {
      this.setData({ nickname: e.detail.value, nameError: "" });
    },

    async saveNickname() {
      const nickname = (this.data.nickname || "").trim();
      if (!nickname) {
        this.setData({ nameError: "请填写昵称" });
        return;
      }
      this.setData({ naming: true });
      try {
        const answer = await getClient().api("/api/v1/viewer/nickname", { method: "POST", data: { nickname } });
        getClient().adoptToken({ token: answer.token, nickname: answer.nickname });
        this.setData({ naming: false });
        await this.load();
      } catch (error) {
        const field = error.fields && error.fields.nickname && error.fields.nickname[0];
        this.setData({ naming: false, nameError: field || error.message });
      }
    },

    retry() {
      this.loaded = this.load();
      return this.loaded;
    },

    preview() {
      wx.previewImage({ urls: [this.data.image], current: this.data.image });
    },

    save(e) {
      const which = e && e.currentTarget && e.currentTarget.dataset.which;
      wx.saveImageToPhotosAlbum({
        filePath: which === "mp" ? this.data.mpCode : this.data.image,
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
