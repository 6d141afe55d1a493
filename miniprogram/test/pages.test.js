const { setUpApp, openPage, text, all, settle } = require("./support/page");

describe("streamer home", () => {
  function serveStreamer(transport) {
    transport.route("GET", "/api/v1/streamers/2", { statusCode: 200, data: { id: 2, name: "小美", bio: "护肤达人", followers: 120, rooms: [
      { id: 9, title: "新年专场", status: "scheduled", scheduled_start: "2099-01-02T12:00:00+00:00", started_at: null, cover: "", has_replay: false },
      { id: 8, title: "周末专场", status: "scheduled", scheduled_start: "2099-01-01T12:00:00+00:00", started_at: null, cover: "", has_replay: false },
      { id: 3, title: "冬季护肤专场", status: "ended", scheduled_start: "2026-12-01T12:00:00+00:00", started_at: "2026-12-01T12:00:00+00:00", cover: "", has_replay: true },
    ] } });
    transport.route("GET", "/api/v1/streamers/2/follow", { statusCode: 200, data: { following: false, followers: 120 } });
    transport.route("POST", "/api/v1/streamers/2/follow", { statusCode: 200, data: { following: true, followers: 121 } });
  }

  test("shows the profile, upcoming rooms soonest first, past rooms with their replay, and follows", async () => {
    const { transport, calls } = setUpApp();
    serveStreamer(transport);
    const page = await openPage("pages/streamer/streamer", { id: "2" });
    expect(text(page, ".name")).toBe("小美");
    expect(all(page, ".upcoming").map((t) => t.split("预告")[0])).toEqual(["周末专场", "新年专场"]);
    expect(text(page, ".past")).toMatch(/^冬季护肤专场看回放 · /);
    page.querySelector(".follow").dispatchEvent("tap");
    await settle();
    expect(text(page, ".follow")).toBe("已关注");
    expect(text(page, ".followers")).toBe("121 粉丝");
    page.querySelector(".past").dispatchEvent("tap");
    await settle();
    expect(calls.navigations).toEqual(["/pages/room/room?id=3"]);
  });
});

describe("my coupons and phone binding", () => {
  const CLAIMS = [
    { id: 1, coupon: 5, name: "直播间专享", kind: "threshold", amount: "20.00", threshold: "199.00", valid_until: "2099-12-31T00:00:00+00:00", code: "3-7-1234", claimed_at: "2026-12-07T12:00:00+00:00", redeemed_at: null },
    { id: 2, coupon: 6, name: "老客券", kind: "discount", amount: "8.50", threshold: "0.00", valid_until: "2099-12-31T00:00:00+00:00", code: "3-7-5678", claimed_at: "2026-12-07T12:00:00+00:00", redeemed_at: "2026-12-07T13:00:00+00:00" },
  ];

  test("lists claimed coupons with their codes and states", async () => {
    const { transport, calls } = setUpApp();
    transport.route("GET", "/api/v1/me/coupons", { statusCode: 200, data: CLAIMS });
    const page = await openPage("pages/coupons/coupons");
    expect(all(page, ".coupon .label")).toEqual(["满199减20", "8.5折"]);
    expect(all(page, ".coupon .state")).toEqual(["可使用", "已使用"]);
    page.querySelector(".coupon .code").dispatchEvent("tap");
    await settle();
    expect(calls.clipboard).toEqual(["3-7-1234"]);
  });

  test("a phone the server already knows (bound on the H5 page) hides the binding card", async () => {
    const { transport } = setUpApp();
    transport.route("GET", "/api/v1/me/coupons", { statusCode: 200, data: [] });
    transport.route("GET", "/api/v1/rooms/3/public", { statusCode: 200, data: { me: { phone_bound: true } } });
    const page = await openPage("pages/coupons/coupons", { room: "3" });
    expect(text(page, ".phone-bound")).toBe("手机号已绑定");
  });

  test("the getPhoneNumber button's code binds the phone and the merged contact's token is kept", async () => {
    const { transport, storage } = setUpApp();
    transport.route("GET", "/api/v1/me/coupons", { statusCode: 200, data: [] });
    transport.route("POST", "/api/v1/viewer/phone/mp", (req) => ({ statusCode: 200, data: { bound: true, contact_id: 42, token: `merged-${req.data.code}` } }));
    const page = await openPage("pages/coupons/coupons");
    expect(text(page, ".empty")).toBe("还没有优惠券，去直播间领取吧");
    await page.instance.onPhoneNumber({ detail: { code: "phone-code-1", errMsg: "getPhoneNumber:ok" } });
    expect(storage.data["qm.session.demo"]).toMatchObject({ token: "merged-phone-code-1", contact_id: 42, phone_bound: true });
    expect(text(page, ".phone-bound")).toBe("手机号已绑定");
  });

  test("a viewer who declines WeChat's prompt can bind by SMS code, and field errors are shown", async () => {
    const { transport, calls } = setUpApp();
    transport.route("GET", "/api/v1/me/coupons", { statusCode: 200, data: [] });
    transport.route("POST", "/api/v1/viewer/phone/code", (req) => (req.data.phone === "123"
      ? { statusCode: 400, data: { code: "phone_invalid", message: "请输入有效的手机号", fields: { phone: ["请输入有效的手机号"] } } }
      : { statusCode: 202, data: { sent: true, expires_in: 300 } }));
    transport.route("POST", "/api/v1/viewer/phone/verify", { statusCode: 200, data: { bound: true, contact_id: 7, token: "tok-x" } });
    const page = await openPage("pages/coupons/coupons");
    await page.instance.onPhoneNumber({ detail: { errMsg: "getPhoneNumber:fail user deny" } });
    expect(page.querySelector(".sms")).toBeTruthy();
    page.instance.onPhoneInput({ detail: { value: "123" } });
    await page.instance.sendCode();
    expect(calls.toasts).toContain("请输入有效的手机号");
    page.instance.onPhoneInput({ detail: { value: "13800001234" } });
    await page.instance.sendCode();
    page.instance.onCodeInput({ detail: { value: "123456" } });
    await page.instance.verifyCode();
    expect(transport.requests.pop().data).toEqual({ phone: "13800001234", code: "123456" });
    expect(text(page, ".phone-bound")).toBe("手机号已绑定");
  });
});
