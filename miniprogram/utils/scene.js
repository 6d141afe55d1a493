// Where a viewer came from. A share card opens /pages/room/room?id=3&invite=abcd1234; a
// mini-program code (wxacode.getUnlimited) carries at most 32 characters in `scene`, so the
// invite poster's code uses "r=3&i=abcd1234" (r: room, i: invite code, c: replay clip); a
// plain QR of the H5 link (the invite poster's, https://…/live/3/?invite=abcd1234 or
// …/live/3/clips/9/) opens the mini-program through a 扫普通链接二维码打开小程序 rule, which
// hands the whole link over in `q`.

function parseScene(query = {}) {
  const out = { room: null, invite: "", clip: null };
  const take = (pairs) => {
    if (pairs.r || pairs.id || pairs.room) out.room = Number(pairs.r || pairs.id || pairs.room) || null;
    if (pairs.i || pairs.invite) out.invite = String(pairs.i || pairs.invite);
    if (pairs.c || pairs.clip) out.clip = Number(pairs.c || pairs.clip) || null;
  };
  take(query);
  if (query.q) {
    const link = decodeURIComponent(String(query.q));
    const path = /\/live\/(\d+)\/(?:clips\/(\d+)\/)?/.exec(link);
    const invite = /[?&]invite=([^&#]+)/.exec(link);
    take({ r: path && path[1], c: path && path[2], i: invite && invite[1] });
  }
  if (query.scene) {
    const pairs = {};
    decodeURIComponent(String(query.scene)).split("&").forEach((part) => {
      const [key, value = ""] = part.split("=");
      if (key) pairs[key] = value;
    });
    take(pairs);
  }
  // Invite codes are short hex (livecommerce.services.invites); anything else is ignored.
  if (!/^[0-9a-f]{4,16}$/.test(out.invite)) out.invite = "";
  return out;
}

function sceneFor({ room, invite, clip }) {
  const parts = [`r=${room}`];
  if (invite) parts.push(`i=${invite}`);
  if (clip) parts.push(`c=${clip}`);
  return parts.join("&");
}

module.exports = { parseScene, sceneFor };
