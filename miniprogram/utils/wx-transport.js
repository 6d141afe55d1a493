// The transport utils/client.js uses inside WeChat: wx.request, wx.login, wx.connectSocket,
// wx.downloadFile, and wx's storage. Only this file knows the shape of wx's callbacks.

function wxTransport() {
  return {
    request({ url, method, data, header, timeout }) {
      return new Promise((resolve, reject) => {
        wx.request({
          url,
          method,
          data,
          header,
          timeout,
          dataType: "json",
          success: (res) => resolve({ statusCode: res.statusCode, data: res.data, header: res.header }),
          fail: (err) => reject(err),
        });
      });
    },
    login() {
      return new Promise((resolve, reject) => {
        wx.login({
          success: (res) => (res.code ? resolve(res.code) : reject(res)),
          fail: reject,
        });
      });
    },
    connectSocket(url) {
      // Several pages may each hold one room socket; WeChat allows 5 at once.
      const task = wx.connectSocket({ url, fail: () => {} });
      return {
        onOpen: (cb) => task.onOpen(cb),
        onMessage: (cb) => task.onMessage(cb),
        onClose: (cb) => task.onClose(cb),
        onError: (cb) => task.onError(cb),
        send: (data) => task.send({ data }),
        close: (code) => task.close({ code }),
      };
    },
    // A binary download (the invite poster) with the viewer's token; resolves with the
    // temporary file and the response headers (X-Invite-Code).
    download({ url, header }) {
      return new Promise((resolve, reject) => {
        let headers = {};
        const task = wx.downloadFile({
          url,
          header,
          success: (res) => resolve({ statusCode: res.statusCode, tempFilePath: res.tempFilePath, header: headers }),
          fail: reject,
        });
        if (task && task.onHeadersReceived) task.onHeadersReceived((res) => { headers = res.header || {}; });
      });
    },
  };
}

function wxStorage() {
  return {
    get: (key) => {
      try {
        return wx.getStorageSync(key) || null;
      } catch (err) {
        return null;
      }
    },
    set: (key, value) => wx.setStorageSync(key, value),
    remove: (key) => wx.removeStorageSync(key),
  };
}

module.exports = { wxTransport, wxStorage };
