const { setUpApp, openPage, text } = require("./support/page");

test("a scanned mini-program code opens its room and keeps the invite for the first login", async () => {
  const { calls, storage } = setUpApp();
  await openPage("pages/index/index", { scene: encodeURIComponent("r=3&i=abcd1234") });
  expect(calls.navigations).toEqual(["/pages/room/room?id=3&invite=abcd1234"]);
  expect(storage.data["qm.invite"]).toBe("abcd1234");
});

test("a launch without a room says how to get in", async () => {
  setUpApp();
  const page = await openPage("pages/index/index", {});
  expect(text(page, ".title")).toBe("请通过直播间分享卡片或二维码进入");
});
