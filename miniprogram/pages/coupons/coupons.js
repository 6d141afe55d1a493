// 我的优惠券, and binding a phone number (WeChat's getPhoneNumber button; an SMS code where
// the viewer prefers to type the number) so a shop can redeem the coupons by phone.
const { getClient } = require("../../utils/app-client");
const { couponLabel, dateTime } = require("../../utils/format");

function card(claim, nowMs) {
  const expired = claim.valid_until && new Date(claim.valid_until).getTime() < nowMs;
  let state = "可使用";
  if (claim.redeemed_at) state = "已使用";
  else if (expired) state = "已过期";
  return {
    id: claim.id,
    label: couponLabel(claim),
    name: claim.name,
    code: claim.code,
    until: claim.valid_until ? `有效期至 ${dateTime(claim.valid_until)}` : "",
    state,
    usable: state === "可使用",
  };
}

Component({
  data: { phase: "loading", errorText: "", coupons: [], phoneBound: false, smsOpen: false, phone: "", code: "", codeSent: false, binding: false },
  methods: {
    onLoad(query) {
      this.roomId = Number((query || {}).room) || null;
      this.loaded = this.load();
      return this.loaded;
    },

    async load() {
      const client = getClient();
      this.setData({ phase: "loading" });
      try {
        const session = await client.ensureSession();
        const claims = await client.api("/api/v1/me/coupons");
        let phoneBound = !!session.phone_bound;
        if (!phoneBound && this.roomId) {
          // The server knows of a phone bound elsewhere (the H5 page, a merged lead).
          try {
            const pub = await client.api(`/api/v1/rooms/${this.roomId}/public`);
            phoneBound = !!(pub.me && pub.me.phone_bound);
          } catch (error) {
            /* the binding card stays: binding again is harmless */
          }
        }
        this.setData({ phase: "ready", coupons: claims.map((c) => card(c, Date.now())), phoneBound });
      } catch (error) {
        this.setData({ phase: "error", errorText: error.message || "加载失败，请重试" });
      }
    },

    retry() {
      this.loaded = this.load();
      return this.loaded;
    },

    copyCode(e) {
      wx.setClipboardData({ data: String(e.currentTarget.dataset.code) });
    },

    // <button open-type="getPhoneNumber">: WeChat asks the viewer, then hands us a one-time
    // code that only the server can exchange for the number (phonenumber.getPhoneNumber).
    async onPhoneNumber(e) {
      const detail = (e && e.detail) || {};
      if (!detail.code) {
        wx.showToast({ title: "未授权手机号，可改用短信验证码绑定", icon: "none" });
        this.setData({ smsOpen: true });
        return;
      }
      await this.bind("/api/v1/viewer/phone/mp", { code: detail.code });
    },

    openSms() {
      this.setData({ smsOpen: true });
    },

    onPhoneInput(e) {
      this.setData({ phone: e.detail.value });
    },

    onCodeInput(e) {
      this.setData({ code: e.detail.value });
    },

    async sendCode() {
      try {
        await getClient().api("/api/v1/viewer/phone/code", { method: "POST", data: { phone: this.data.phone } });
        this.setData({ codeSent: true });
        wx.showToast({ title: "验证码已发送", icon: "none" });
      } catch (error) {
        const field = error.fields && error.fields.phone && error.fields.phone[0];
        wx.showToast({ title: field || error.message, icon: "none" });
      }
    },

    async verifyCode() {
      await this.bind("/api/v1/viewer/phone/verify", { phone: this.data.phone, code: this.data.code });
    },

    async bind(path, data) {
      if (this.data.binding) return;
      this.setData({ binding: true });
      try {
        const answer = await getClient().api(path, { method: "POST", data });
        // One-ID may have merged this viewer into the contact that already had the phone.
        getClient().adoptToken({ token: answer.token, contact_id: answer.contact_id, phone_bound: true });
        this.setData({ phoneBound: true, smsOpen: false });
        wx.showToast({ title: "手机号已绑定", icon: "none" });
      } catch (error) {
        const fields = error.fields || {};
        const first = Object.values(fields).flat()[0];
        wx.showToast({ title: first || error.message, icon: "none" });
      }
      this.setData({ binding: false });
    },
  },
});
