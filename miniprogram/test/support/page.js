// Renders a page with miniprogram-simulate against the fake transport, with `wx` mocked.
const path = require("path");
const simulate = require("miniprogram-simulate");
const { createClient } = require("../../utils/client");
const { setClient } = require("../../utils/app-client");
const { fakeTransport, memoryStorage, manualTimers, settle, config } = require("./fake");

const ROOT = path.join(__dirname, "..", "..");

function installWx(storage) {
  const calls = { toasts: [], navigations: [], clipboard: [], subscribe: [] };
  const video = { seek: jest.fn(), play: jest.fn(), pause: jest.fn() };
  global.wx = {
    ...(global.wx || {}),
    showToast: jest.fn(({ title }) => calls.toasts.push(title)),
    getStorageSync: jest.fn((key) => storage.get(key) || ""),
    setStorageSync: jest.fn((key, value) => storage.set(key, value)),
    removeStorageSync: jest.fn((key) => storage.remove(key)),
    setNavigationBarTitle: jest.fn(),
    navigateTo: jest.fn(({ url }) => calls.navigations.push(url)),
    redirectTo: jest.fn(({ url }) => calls.navigations.push(url)),
    setClipboardData: jest.fn(({ data }) => calls.clipboard.push(data)),
    navigateToMiniProgram: jest.fn(),
    createVideoContext: jest.fn(() => video),
    requestSubscribeMessage: jest.fn(),
    previewImage: jest.fn(),
    saveImageToPhotosAlbum: jest.fn(),
    showModal: jest.fn(),
  };
  return { calls, video };
}

function setUpApp() {
  const storage = memoryStorage();
  const transport = fakeTransport();
  const timers = manualTimers();
  const client = createClient({ config, transport, storage, timers, random: () => 0.5 });
  setClient(client);
  const { calls, video } = installWx(storage);
  return { storage, transport, timers, client, calls, video };
}

const loaded = {};

async function openPage(page, query = {}) {
  // A page is compiled once per test file; each test renders a fresh instance of it.
  if (!loaded[page]) loaded[page] = simulate.load(path.join(ROOT, page), { rootPath: ROOT });
  const id = loaded[page];
  const comp = simulate.render(id);
  comp.attach(document.createElement("parent-wrapper"));
  await comp.instance.onLoad(query);
  await settle();
  return comp;
}

function text(comp, selector) {
  const node = comp.querySelector(selector);
  return node ? node.dom.textContent.replace(/\s+/g, " ").trim() : null;
}

function all(comp, selector) {
  return comp.querySelectorAll(selector).map((n) => n.dom.textContent.replace(/\s+/g, " ").trim());
}

module.exports = { setUpApp, openPage, text, all, settle };
