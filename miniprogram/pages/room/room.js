// The room: live (or warm-up before the start, or the replay after it), products with the
// live "now explaining" card, coupons to claim, chat and likes over the room socket, lucky
// draws. Built with Component() so the same code runs in WeChat and in miniprogram-simulate.
//
// State is truth, events are hints (docs/realtime.md): GET /rooms/{id}/public on load, the
// hub's state on every (re)connect, then events newer than that state.
const { getClient } = require("../../utils/app-client");

// The client's config (config.js in the app; the tests' own in jest).
const cfg = () => getClient().config;
const { ChatModel } = require("../../utils/chat");
const { parseScene } = require("../../utils/scene");
const { money, couponLabel, clock, countdown, dateTime, STATUS } = require("../../utils/format");

const CLAIM_ANSWERS = {
  sold_out: "手慢了，优惠券已抢光",
  limit_reached: "您已领过该券，每人限领已满",
  coupon_not_released: "优惠券还未发放",
  coupon_expired: "优惠券已过期",
};
const LIKE_FLUSH_MS = 1000; // likes travel as counters: one frame a second at most
const MAX_LIKES_PER_FRAME = 100;

// WeChat's live-player plays FLV/RTMP only; an HLS play URL goes to the video component
// (which plays live HLS too, with the HLS delay). config.liveFlv: the CDN serves the same
// stream as .flv (Tencent Cloud live does), so live-player gets the low-latency one.
function playerFor(url) {
  if (!url) return { kind: "", src: "" };
  if (/^rtmp:\/\//i.test(url) || /\.flv(\?|$)/i.test(url)) return { kind: "live-player", src: url };
  if (cfg().liveFlv && /\.m3u8(\?|$)/i.test(url)) {
    return { kind: "live-player", src: url.replace(/\.m3u8(\?|$)/i, ".flv$1") };
  }
  return { kind: "video", src: url };
}

// wx.requestSubscribeMessage's answer as {templateId: "accept"|"reject"|"ban"|"filter"}; {}
// when the mini-program owns no template or the viewer turned subscriptions off.
function askSubscribe() {
  const ids = Object.values(cfg().subscribeTemplates || {}).filter(Boolean);
  if (!ids.length) return Promise.resolve({});
  return new Promise((resolve) => {
    wx.requestSubscribeMessage({
      tmplIds: ids,
      success: (res) => {
        const results = {};
        ids.forEach((id) => {
          if (res && typeof res[id] === "string") results[id] = res[id];
        });
        resolve(results);
      },
      fail: () => resolve({}),
    });
  });
}

function toast(title) {
  if (title) wx.showToast({ title: String(title).slice(0, 40), icon: "none", duration: 2500 });
}

Component({
  data: {
    phase: "loading", // loading | ready | error
    errorText: "",
    mode: "live", // live | warmup | ended | replay
    room: null,
    statusText: "",
    countdown: "",
    startText: "",
    player: { kind: "", src: "" },
    replayText: "",
    replayStart: 0,
    replay: null, // {url, clips: [{id, name, price, start_s, end_s, span}]}
    currentClip: null,
    products: [],
    pinned: null,
    coupons: [],
    couponPop: null,
    chat: { lines: [], announcement: "", stateLine: "", blocked: false, error: "" },
    chatEnabled: true,
    input: "",
    likes: 0,
    online: 0,
    connection: "",
    following: false,
    followers: 0,
    reserved: false,
    reservationText: "",
    reserving: false,
    askName: false,
    nickname: "",
    nameError: "",
    draw: null,
    scrollTo: "",
  },

  methods: {
    onLoad(query) {
      const where = parseScene(query || {});
      this.roomId = where.room;
      this.clipId = where.clip;
      this.invite = where.invite || wx.getStorageSync("qm.invite") || "";
      this.coupons = new Map();
      this.claimed = new Map(); // coupon id → code
      this.pendingLikes = 0;
      this.chatModel = new ChatModel({ myContactId: () => (this.session ? this.session.contact_id : null) });
      if (!this.roomId) {
        this.setData({ phase: "error", errorText: "没有找到这个直播间" });
        return Promise.resolve();
      }
      this.loaded = this.start();
      return this.loaded;
    },

    onUnload() {
      this.stop();
    },

    detached() {
      this.stop();
    },

    stop() {
      if (this.stream) this.stream.close();
      this.stream = null;
      clearInterval(this.countdownTimer);
      clearTimeout(this.likeTimer);
      clearTimeout(this.muteTimer);
    },

    async start() {
      const client = getClient();
      this.setData({ phase: "loading", errorText: "" });
      try {
        this.session = await client.ensureSession({ room: this.roomId, invite: this.invite });
        if (this.invite) wx.removeStorageSync("qm.invite"); // credited once, at the first login
        try {
          const mine = await client.api("/api/v1/me/coupons");
          mine.forEach((c) => this.claimed.set(c.coupon, c.code));
        } catch (error) {
          /* receipts are a nicety: the claim answer says it again */
        }
        const pub = await client.api(`/api/v1/rooms/${this.roomId}/public`);
        this.applyPublic(pub);
        this.setData({ phase: "ready" });
        const status = pub.room.status;
        if (status === "ended" || this.clipId) {
          await this.showReplay();
        } else {
          this.connect();
        }
      } catch (error) {
        this.setData({ phase: "error", errorText: error.message || "加载失败，请重试" });
      }
    },

    retry() {
      this.stop();
      this.loaded = this.start();
      return this.loaded;
    },

    connect() {
      this.stream = getClient().connectRoom({
        roomId: this.roomId,
        onState: (state) => this.applyHubState(state),
        onEvent: (event) => this.onRoomEvent(event),
        onStatus: (status) => {
          const text = status === "reconnecting" ? "网络不稳定，正在重新连接…" : status === "connecting" ? "连接中…" : "";
          if (text !== this.data.connection) this.setData({ connection: text });
        },
      });
      return this.stream.ready;
    },

    // --- state ---------------------------------------------------------------------------------
    applyPublic(pub) {
      const room = pub.room;
      this.room = room;
      this.playUrl = pub.play_url;
      (pub.coupons || []).forEach((c) => this.coupons.set(c.id, { ...this.coupons.get(c.id), ...c }));
      const me = pub.me || {};
      this.chatModel.applyMe(me);
      this.products = pub.products || [];
      wx.setNavigationBarTitle({ title: room.title || "直播间" });
      this.setData({
        room,
        followers: room.streamer.followers,
        following: !!me.following,
        reserved: !!me.reservation,
        reservationText: me.reservation ? "已预约，开播提醒已设置" : "",
        startText: dateTime(room.scheduled_start),
      });
      this.renderStatus(room.status);
      this.renderProducts();
      this.renderCoupons();
      this.renderChat();
      this.scheduleUnmute();
    },

    applyHubState(state) {
      if (state.status && state.status !== this.room.status) this.renderStatus(state.status);
      if (Array.isArray(state.products)) this.products = state.products;
      if (Array.isArray(state.coupons)) state.coupons.forEach((c) => this.coupons.set(c.id, { ...this.coupons.get(c.id), ...c }));
      this.chatModel.replaceAll(state.chat || []);
      if (state.announcement !== undefined) this.chatModel.announcement = state.announcement || "";
      if (state.chat_settings) this.chatModel.applySettings(state.chat_settings);
      this.renderProducts();
      this.renderCoupons();
      this.renderChat();
      this.setData({ online: state.online || 0, likes: Math.max(state.likes || 0, 0) });
    },

    renderStatus(status) {
      this.room = { ...this.room, status };
      let mode = "live";
      if (status === "scheduled") mode = "warmup";
      if (status === "ended") mode = this.clipId || this.data.replay ? "replay" : "ended";
      this.setData({
        "room.status": status,
        statusText: STATUS[status] || status,
        mode,
        chatEnabled: status !== "ended",
        player: status === "live" ? playerFor(this.playUrl) : { kind: "", src: "" },
      });
      clearInterval(this.countdownTimer);
      if (status === "scheduled") {
        const tick = () => this.setData({ countdown: countdown(this.room.scheduled_start, Date.now()) });
        tick();
        this.countdownTimer = setInterval(tick, 1000);
      }
    },

    renderProducts() {
      const cards = this.products.map((p) => ({
        id: p.id,
        name: p.name,
        image: p.image || "",
        price: money(p.price),
        originalPrice: p.original_price ? money(p.original_price) : "",
        pinned: !!p.pinned,
        clip: p.clip || null,
      }));
      this.setData({ products: cards, pinned: cards.find((c) => c.pinned) || null });
    },

    couponCard(c) {
      const code = this.claimed.get(c.id);
      let button = "立即领取";
      if (code) button = "已领取";
      else if (c.remaining <= 0) button = "已抢光";
      return {
        id: c.id,
        label: couponLabel(c),
        name: c.name,
        button,
        disabled: !!code || c.remaining <= 0 || !!c.claiming,
        detail: code ? `核销码 ${code}` : `剩余 ${Math.max(c.remaining || 0, 0)} 张`,
        answer: c.answer || "",
      };
    },

    renderCoupons() {
      const cards = [...this.coupons.values()].map((c) => this.couponCard(c));
      const popId = this.data.couponPop && this.data.couponPop.id;
      this.setData({ coupons: cards, couponPop: popId ? cards.find((c) => c.id === popId) || null : null });
    },

    renderChat() {
      const view = this.chatModel.view();
      const last = view.lines.length ? `msg-${view.lines[view.lines.length - 1].key}` : "";
      this.setData({ chat: view, scrollTo: last });
    },

    scheduleUnmute() {
      clearTimeout(this.muteTimer);
      const r = this.chatModel.restriction;
      if (!r || r.kind !== "muted" || !r.until) return;
      // A timed mute ends by itself: no event comes, so the page lifts it on time.
      const ms = new Date(r.until).getTime() - Date.now();
      if (ms > 0 && ms < 2 ** 31) {
        this.muteTimer = setTimeout(() => {
          this.chatModel.expire(Date.now());
          this.renderChat();
        }, ms);
      }
    },

    // --- events ------------------------------------------------------------------------------
    onRoomEvent(event) {
      const effect = this.chatModel.onEvent(event);
      if (effect) {
        if (effect.refill && !this.data.input) this.setData({ input: effect.refill });
        toast(effect.toast);
        this.renderChat();
        this.scheduleUnmute();
        if (event.type === "notice" && event.code === "closed" && event.close_code !== 4403) {
          this.setData({ connection: "" });
          if (event.close_code === 4404) this.setData({ phase: "error", errorText: "没有找到这个直播间" });
        }
        return;
      }
      switch (event.type) {
        case "notice":
          if (event.code === "offline") this.setData({ connection: event.message || "网络不稳定，正在重新连接…" });
          else if (event.code === "not_found") this.setData({ phase: "error", errorText: "没有找到这个直播间" });
          break;
        case "product.pinned": {
          const pinned = event.product;
          let found = false;
          this.products = this.products.map((p) => {
            if (pinned && p.id === pinned.id) {
              found = true;
              return { ...p, ...pinned, pinned: true };
            }
            return { ...p, pinned: false };
          });
          if (pinned && !found) this.products.push({ ...pinned, pinned: true });
          this.renderProducts();
          break;
        }
        case "coupon.released":
          this.coupons.set(event.coupon.id, { ...this.coupons.get(event.coupon.id), ...event.coupon });
          this.setData({ couponPop: { id: event.coupon.id } });
          this.renderCoupons();
          break;
        case "coupon.stock": {
          const c = this.coupons.get(event.coupon);
          if (c) {
            c.remaining = Math.min(c.remaining === undefined ? event.remaining : c.remaining, event.remaining);
            this.renderCoupons();
          }
          break;
        }
        case "draw.result": {
          const winners = event.winners || [];
          const mine = winners.some((w) => w.contact_id === this.session.contact_id);
          const names = winners.map((w) => w.nickname || "观众").join("、") || "暂无";
          this.setData({
            draw: {
              mine,
              prize: event.prize || "",
              title: mine ? "恭喜你中奖了！" : "开奖啦",
              text: mine ? `奖品：${event.prize || ""}` : `中奖观众：${names}`,
            },
          });
          break;
        }
        case "room.status":
          this.renderStatus(event.status);
          if (event.status === "ended") {
            if (this.stream) this.stream.close();
            this.stream = null;
            this.showReplay();
          }
          break;
        case "like":
          this.setData({ likes: Math.max(this.data.likes, event.count || 0) });
          break;
        case "online":
          this.setData({ online: event.count || 0 });
          break;
        default:
          break;
      }
    },

    // --- replay ------------------------------------------------------------------------------
    async showReplay() {
      let replay;
      try {
        replay = await getClient().api(`/api/v1/rooms/${this.roomId}/replay`, { auth: false });
      } catch (error) {
        const text = error.code === "replay_not_ready" ? "直播已结束，回放生成中，稍后再来看看" : error.message;
        this.setData({ mode: "ended", chatEnabled: false, replayText: text });
        return;
      }
      const clips = (replay.clips || []).map((clip) => ({
        id: clip.id,
        name: clip.product.name,
        price: money(clip.product.price),
        productId: clip.product.id,
        start_s: clip.start_s,
        end_s: clip.end_s,
        span: `${clock(clip.start_s)} – ${clock(clip.end_s)}`,
      }));
      const current = this.clipId ? clips.find((c) => c.id === this.clipId) || null : null;
      this.setData({
        mode: "replay",
        chatEnabled: false,
        replay: { url: replay.url, clips },
        currentClip: current,
        replayStart: current ? current.start_s : 0,
      });
      getClient()
        .api(`/api/v1/rooms/${this.roomId}/replay/watch`, { method: "POST", data: this.clipId ? { clip: this.clipId } : {} })
        .catch(() => {});
    },

    // Jump the replay to the moment a product was explained.
    jumpToClip(e) {
      const id = Number(e.currentTarget.dataset.clip);
      const clip = (this.data.replay ? this.data.replay.clips : []).find((c) => c.id === id);
      if (!clip) return;
      this.clipId = clip.id;
      this.setData({ currentClip: clip });
      const video = wx.createVideoContext("replay", this);
      if (video) {
        video.seek(clip.start_s);
        video.play();
      }
      getClient()
        .api(`/api/v1/rooms/${this.roomId}/replay/watch`, { method: "POST", data: { clip: clip.id } })
        .catch(() => {});
    },

    onReplayTime(e) {
      const clip = this.data.currentClip;
      if (clip && e.detail.currentTime >= clip.end_s) {
        const video = wx.createVideoContext("replay", this);
        if (video) video.pause();
      }
    },

    // --- actions ------------------------------------------------------------------------------
    async claim(e) {
      const id = Number(e.currentTarget.dataset.coupon);
      const c = this.coupons.get(id);
      if (!c || c.claiming) return;
      c.claiming = true;
      this.renderCoupons();
      try {
        const receipt = await getClient().api(`/api/v1/coupons/${id}/claim`, {
          method: "POST",
          data: this.clipId ? { clip: this.clipId } : {},
        });
        this.claimed.set(id, receipt.code);
        c.remaining = receipt.remaining;
        c.answer = "领取成功！可在“我的优惠券”查看";
      } catch (error) {
        if (error.code === "sold_out") c.remaining = 0;
        if (error.code === "limit_reached" && !this.claimed.has(id)) this.claimed.set(id, "已领");
        c.answer = CLAIM_ANSWERS[error.code] || error.message || "领取失败，请重试";
      }
      c.claiming = false;
      toast(c.answer);
      this.renderCoupons();
    },

    closeCouponPop() {
      this.setData({ couponPop: null });
    },

    closeDraw() {
      this.setData({ draw: null });
    },

    onInput(e) {
      this.setData({ input: e.detail.value });
    },

    sendChat() {
      const text = (this.data.input || "").trim();
      if (!text || this.chatModel.restriction) return false;
      const session = getClient().session();
      if (session && !session.nickname) {
        // A mini-program login brings no name: chat would say "观众" for everyone.
        this.setData({ askName: true });
        return false;
      }
      if (!this.stream || !this.stream.send({ type: "chat", text })) {
        toast("网络连接中，请稍后再发");
        return false;
      }
      this.chatModel.sent(text);
      this.setData({ input: "", "chat.error": "" });
      return true;
    },

    onNickname(e) {
      this.setData({ nickname: e.detail.value, nameError: "" });
    },

    closeName() {
      this.setData({ askName: false });
    },

    // The name goes into a fresh token, and chat takes it from the socket's token: reconnect
    // (resuming by sequence, nothing is missed) and let the viewer press send again.
    async saveNickname() {
      const nickname = (this.data.nickname || "").trim();
      if (!nickname) {
        this.setData({ nameError: "请填写昵称" });
        return;
      }
      try {
        const answer = await getClient().api("/api/v1/viewer/nickname", { method: "POST", data: { nickname } });
        this.session = getClient().adoptToken({ token: answer.token, nickname: answer.nickname });
        this.setData({ askName: false });
        if (this.stream) this.stream.close();
        this.connect();
        toast("昵称已设置，可以发言了");
      } catch (error) {
        const field = error.fields && error.fields.nickname && error.fields.nickname[0];
        this.setData({ nameError: field || error.message });
      }
    },

    like() {
      this.pendingLikes += 1;
      this.setData({ likes: this.data.likes + 1 });
      if (!this.likeTimer) this.likeTimer = setTimeout(() => this.flushLikes(), LIKE_FLUSH_MS);
    },

    flushLikes() {
      this.likeTimer = null;
      const count = Math.min(this.pendingLikes, MAX_LIKES_PER_FRAME);
      if (!count || !this.stream) return;
      if (this.stream.send({ type: "like", count })) this.pendingLikes -= count;
      if (this.pendingLikes) this.likeTimer = setTimeout(() => this.flushLikes(), LIKE_FLUSH_MS);
    },

    async openProduct(e) {
      const id = Number(e.currentTarget.dataset.product);
      const clip = Number(e.currentTarget.dataset.clip) || this.clipId || null;
      try {
        const link = await getClient().api(`/api/v1/products/${id}/click`, {
          method: "POST",
          data: clip ? { room: this.roomId, clip } : { room: this.roomId },
        });
        if (link.mp_path && cfg().mallAppId) {
          wx.navigateToMiniProgram({ appId: cfg().mallAppId, path: link.mp_path });
        } else if (link.link_url) {
          // A mini-program may only open web pages of its own business domains: hand the
          // link over instead of a blank web-view.
          wx.setClipboardData({ data: link.link_url });
          toast("商品链接已复制，可在浏览器打开");
        } else {
          toast("商品暂未上架");
        }
      } catch (error) {
        toast(error.message);
      }
    },

    async toggleFollow() {
      const streamer = this.room.streamer.id;
      try {
        const data = await getClient().api(`/api/v1/streamers/${streamer}/follow`, {
          method: this.data.following ? "DELETE" : "POST",
        });
        this.setData({ following: data.following, followers: data.followers });
        toast(data.following ? "已关注，开播早知道" : "已取消关注");
      } catch (error) {
        toast(error.message);
      }
    },

    // Reservation: ask for the subscribe-message consent first (WeChat only lets a page ask
    // from a tap), record it on the contact, then reserve. "开播前提醒你" is said only when
    // the server says a reminder can be delivered (or, before it says, when the viewer
    // accepted the subscribe message).
    async reserve() {
      if (this.data.reserving) return;
      this.setData({ reserving: true });
      const client = getClient();
      const results = await askSubscribe();
      const accepted = Object.values(results).includes("accept");
      try {
        if (Object.keys(results).length) {
          await client.api("/api/v1/viewer/mp-subscriptions", {
            method: "POST",
            data: cfg().wechatAccount ? { results, account: cfg().wechatAccount } : { results },
          });
        }
        // The reservation names its reminder channel; the answer says whether one can come.
        const body = await client.api(`/api/v1/rooms/${this.roomId}/reserve`, {
          method: "POST",
          data: accepted ? { remind: "mp_subscribe" } : {},
        });
        let text = accepted ? "已预约，开播时微信提醒你" : "已预约。未订阅提醒，开播时可能收不到通知";
        if (body && body.reminder && body.reminder.message) text = body.reminder.message;
        this.setData({ reserved: true, reservationText: text });
        toast(text);
      } catch (error) {
        toast(error.message);
      }
      this.setData({ reserving: false });
    },

    openPoster() {
      wx.navigateTo({ url: `/pages/poster/poster?id=${this.roomId}${this.clipId ? `&clip=${this.clipId}` : ""}` });
    },

    // The share card: the room, crediting this viewer's invite code once it is known (the
    // poster page learns it from the server).
    onShareAppMessage() {
      const code = wx.getStorageSync(`qm.inviteCode.${cfg().org}`) || "";
      const room = this.room || {};
      return {
        title: room.title || "直播间",
        path: `/pages/room/room?id=${this.roomId}${code ? `&invite=${code}` : ""}${this.clipId ? `&clip=${this.clipId}` : ""}`,
        imageUrl: room.cover || undefined,
      };
    },

    openStreamer() {
      wx.navigateTo({ url: `/pages/streamer/streamer?id=${this.room.streamer.id}` });
    },

    openCoupons() {
      wx.navigateTo({ url: `/pages/coupons/coupons?room=${this.roomId}` });
    },
  },
});
