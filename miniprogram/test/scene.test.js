const { parseScene, sceneFor } = require("../utils/scene");

test("a scanned code's scene and a share card's query both name room, invite and clip", () => {
  expect(parseScene({ scene: encodeURIComponent("r=3&i=abcd1234&c=9") })).toEqual({ room: 3, invite: "abcd1234", clip: 9 });
  expect(parseScene({ id: "3", invite: "abcd1234" })).toEqual({ room: 3, invite: "abcd1234", clip: null });
  expect(sceneFor({ room: 3, invite: "abcd1234" })).toBe("r=3&i=abcd1234");
});

test("anything but a short hex invite code is dropped", () => {
  expect(parseScene({ id: "3", invite: "<script>" }).invite).toBe("");
  expect(parseScene({}).room).toBe(null);
});

test("a plain QR of the H5 invite link (扫普通链接二维码) opens the same room with the invite", () => {
  const q = encodeURIComponent("https://live.example.com/live/3/?invite=abcd1234");
  expect(parseScene({ q })).toEqual({ room: 3, invite: "abcd1234", clip: null });
  expect(parseScene({ q: encodeURIComponent("https://live.example.com/live/3/clips/9/?invite=abcd1234") })).toEqual({ room: 3, invite: "abcd1234", clip: 9 });
});
