// The contract test's Node side (tests/miniprogram/test_contract.py serves the backend and
// runs this): the mini-program's utils/client.js logs in with a mini-program code, fetches
// the room, claims a coupon, chats over the room socket, gets back what it missed
// during a drop by resuming from its last sequence number, is told when WeChat's content
// check refuses a text, and binds a phone with a getPhoneNumber code. Prints one JSON line.
const { createClient } = require("../../utils/client");
const { parseScene } = require("../../utils/scene");
const { nodeTransport, memoryStorage } = require("./node-transport");

const base = process.env.QM_URL;
const roomId = Number(process.env.QM_ROOM);
const couponId = Number(process.env.QM_COUPON);
const org = process.env.QM_ORG || "demo";

function viewer(prefix) {
  const transport = nodeTransport({ codePrefix: prefix });
  const client = createClient({ config: { apiHost: base, org }, transport, storage: memoryStorage() });
  return { client, transport };
}

function waitFor(predicate, what, ms = 15000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      const value = predicate();
      if (value) return resolve(value);
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 50);
      return undefined;
    };
    tick();
  });
}

async function main() {
  const out = {};
  const alice = viewer("mp-alice");
  const session = await alice.client.ensureSession({ room: roomId });
  out.session = { contact_id: session.contact_id, token: !!session.token };

  const pub = await alice.client.api(`/api/v1/rooms/${roomId}/public`);
  out.room = { status: pub.room.status, title: pub.room.title, products: pub.products.length, coupons: pub.coupons.map((c) => c.id), me: pub.me };

  const events = [];
  const states = [];
  const statuses = [];
  const live = alice.client.connectRoom({
    roomId,
    onEvent: (e) => events.push(e),
    onState: (s) => states.push(s),
    onStatus: (s) => statuses.push(s),
  });
  await live.ready;
  await waitFor(() => statuses.includes("open"), "the socket to open");

  const receipt = await alice.client.api(`/api/v1/coupons/${couponId}/claim`, { method: "POST", data: {} });
  out.claim = receipt;
  try {
    await alice.client.api(`/api/v1/coupons/${couponId}/claim`, { method: "POST", data: {} });
    out.second_claim = "claimed";
  } catch (error) {
    out.second_claim = { status: error.status, code: error.code, message: error.message };
  }
  await waitFor(() => events.find((e) => e.type === "coupon.stock" && e.coupon === couponId), "coupon.stock");

  if (!live.send({ type: "chat", text: "小程序来的第一条" })) throw new Error("alice could not send");
  const mine = await waitFor(() => events.find((e) => e.type === "chat" && e.text === "小程序来的第一条"), "own chat back");
  out.chat = { contact_id: mine.contact_id, status: mine.status, seq: mine.seq };

  // A drop: while alice is away, bob chats; alice comes back and must get it once.
  const seqBefore = live.seq;
  alice.transport.sockets[alice.transport.sockets.length - 1].ws.close(4000);
  const bob = viewer("mp-bob");
  const bobStatuses = [];
  const bobLive = bob.client.connectRoom({ roomId, onStatus: (st) => bobStatuses.push(st) });
  await bobLive.ready;
  await waitFor(() => bobStatuses.includes("open"), "bob's socket to open");
  if (!bobLive.send({ type: "chat", text: "掉线时的消息" })) throw new Error("bob could not send");
  const missed = await waitFor(() => events.find((e) => e.type === "chat" && e.text === "掉线时的消息"), "the missed chat after resume", 20000);
  const resumeFrames = alice.transport.sockets.length;
  out.resume = {
    sockets: resumeFrames,
    missed_seq_after_drop: missed.seq > seqBefore,
    copies: events.filter((e) => e.type === "chat" && e.text === "掉线时的消息").length,
  };
  out.states = states.length;

  // WeChat's content check (the demo's embedded stub calls "代开发票" risky) answers the author.
  await new Promise((resolve) => setTimeout(resolve, 1100)); // one message a second per viewer
  await waitFor(() => statuses[statuses.length - 1] === "open", "alice's socket to be open");
  if (!live.send({ type: "chat", text: "代开发票找我" })) throw new Error("alice could not send");
  const refused = await waitFor(() => events.find((e) => e.type === "notice" && e.code !== "offline"), "the content check's notice");
  out.content_check = { code: refused.code };

  // Phone binding with the getPhoneNumber button's code; the answer's token is kept.
  const bound = await alice.client.api("/api/v1/viewer/phone/mp", { method: "POST", data: { code: "contract-phone-1" } });
  alice.client.adoptToken({ token: bound.token, contact_id: bound.contact_id, phone_bound: true });
  const after = await alice.client.api(`/api/v1/rooms/${roomId}/public`);
  // The viewer's mini-program code: its scene reads back as this room and an invite code.
  const code = await alice.client.download(`/api/v1/rooms/${roomId}/mp-code`);
  out.mp_code = { png: code.header["content-type"] === "image/png", scene: parseScene({ scene: encodeURIComponent(code.header["x-mp-scene"]) }) };
  out.phone = { bound: bound.bound, phone_bound: after.me.phone_bound, same_contact: bound.contact_id === session.contact_id };
  bobLive.close();
  live.close();
  out.errors = {};
  try {
    await alice.client.api("/api/v1/rooms/999999/public");
  } catch (error) {
    out.errors.unknown_room = { status: error.status, code: error.code };
  }
  const offline = createClient({ config: { apiHost: "http://127.0.0.1:9", org }, transport: nodeTransport(), storage: memoryStorage() });
  try {
    await offline.ensureSession();
  } catch (error) {
    out.errors.unreachable = { code: error.code, message: error.message };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error.stack || error}\n`);
    process.exit(1);
  },
);
