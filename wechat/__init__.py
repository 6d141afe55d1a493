"""WeChat identity: client factory, callbacks, OAuth, JS-SDK, mini-program login, QR codes,
phone binding. See docs/wechat.md."""
