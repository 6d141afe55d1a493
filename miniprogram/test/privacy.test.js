// PRIVACY.md (用户隐私保护指引) declares exactly the WeChat privacy interfaces the code uses.
const fs = require("fs");
const path = require("path");

const ROOT = path.join(__dirname, "..");
// WeChat's privacy interfaces (隐私接口) a viewer client could plausibly call.
const PRIVACY_APIS = [
  "getPhoneNumber", "getRealtimePhoneNumber", "saveImageToPhotosAlbum", "saveVideoToPhotosAlbum",
  "setClipboardData", "getClipboardData", "getLocation", "getFuzzyLocation", "chooseLocation",
  "chooseAddress", "chooseImage", "chooseMedia", "chooseVideo", "getUserProfile", "chooseAvatar",
  "startRecord", "getRecorderManager", "createCameraContext", "getWeRunData", "chooseInvoice",
  "addPhoneContact", "openBluetoothAdapter",
];

// Privacy components used in WXML rather than called: their marker in code and in the guide.
const PRIVACY_MARKUP = { 'type="nickname"': /type="nickname"/ };

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return ["node_modules", "test"].includes(entry.name) ? [] : sources(full);
    return /\.(js|wxml)$/.test(entry.name) ? [full] : [];
  });
}

test("every privacy interface the client calls is declared, and nothing else", () => {
  const code = sources(ROOT).map((f) => fs.readFileSync(f, "utf8")).join("\n");
  const used = PRIVACY_APIS.filter((api) => new RegExp(`\\b${api}\\b`).test(code));
  const doc = fs.readFileSync(path.join(ROOT, "PRIVACY.md"), "utf8");
  const declaredSection = doc.split("## 不经隐私接口")[0];
  const declared = PRIVACY_APIS.filter((api) => declaredSection.includes(`\`${api}\``));
  Object.entries(PRIVACY_MARKUP).forEach(([marker, pattern]) => {
    if (pattern.test(code)) used.push(marker);
    if (declaredSection.includes(`\`${marker}\``)) declared.push(marker);
  });
  expect(used.sort()).toEqual(declared.sort());
  expect(used).toEqual(expect.arrayContaining(["getPhoneNumber", "saveImageToPhotosAlbum", "setClipboardData"]));
});
