// Where a viewer came from. A share card opens /pages/room/room?id=3&invite=abcd1234; a
// mini-program code (wxacode.getUnlimited) carries at most 32 characters in `scene`, so the
// invite poster's code uses "r=3&i=abcd1234" (r: room, i: invite code, c: replay clip).

function parseScene(query = {}) {
  const out = { room: null, invite: "", clip: null };
  const take = (pairs) => {
    if (pairs.r || pairs.id || pairs.room) out.room = Number(pairs.r || pairs.id || pairs.room) || null;
    if (pairs.i || pairs.invite) out.invite = String(pairs.i || pairs.invite);
    if (pairs.c || pairs.clip) out.clip = Number(pairs.c || pairs.clip) || null;
  };
  take(query);
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
