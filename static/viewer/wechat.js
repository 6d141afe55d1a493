// WeChat sign-in for the viewer page (docs/wechat.md). Inside WeChat's browser the page
// sends the viewer through H5 OAuth once (snsapi_base: silent); WeChat returns to the same
// page with the one-time code in the URL fragment, which is exchanged for a viewer token.

export function inWeChat() {
  return /MicroMessenger/i.test(navigator.userAgent);
}

// {wechat_code, wechat_account} from "#wechat_code=…&wechat_account=…", removed from the
// address bar at once (a code is single use and must not be shared with the link).
export function takeWeChatCode() {
  if (!location.hash.includes("wechat_code=")) return null;
  const params = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, "", location.pathname + location.search);
  const code = params.get("wechat_code");
  if (!code) return null;
  const account = Number(params.get("wechat_account"));
  return account ? { wechat_code: code, wechat_account: account } : { wechat_code: code };
}

// Go through OAuth once per tab; false when it was already tried (then: guest).
export function startWeChatLogin(org, scope = "snsapi_base") {
  const tried = `qm.wx.tried.${org}`;
  if (sessionStorage.getItem(tried)) return false;
  sessionStorage.setItem(tried, "1");
  const next = location.pathname + location.search;
  const query = new URLSearchParams({ org, scope, next });
  location.assign(`/wechat/oauth/start?${query}`);
  return true;
}

// Share cards inside WeChat: load the JS-SDK (static/vendor/jweixin.js, from npm), sign this
// page at /api/v1/wechat/jssdk-config and set the card (title, cover, link with the sharer's
// invite code). Without an official account or outside WeChat the page shares a plain link.
export async function setUpWeChatShare({ token, roomId }) {
  if (!inWeChat()) return;
  await new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/static/vendor/jweixin.js";
    script.onload = resolve;
    script.onerror = reject;
    document.head.append(script);
  });
  const query = new URLSearchParams({ url: location.href.split("#")[0] });
  if (roomId) query.set("room", roomId);
  const response = await fetch(`/api/v1/wechat/jssdk-config?${query}`, {
    headers: { Accept: "application/json", Authorization: `Token ${token}` },
  });
  if (!response.ok) return;
  const config = await response.json();
  const { share, ...signed } = config;
  window.wx.config({ debug: false, ...signed });
  window.wx.ready(() => {
    window.wx.updateAppMessageShareData(share);
    window.wx.updateTimelineShareData(share);
  });
  document.documentElement.dataset.wxShare = "configured";
}
