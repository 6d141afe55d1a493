// The app's one client (utils/client.js over wx), created on first use. Tests replace it
// with setClient(createClient({ transport: fake, ... })).
const config = require("../config");
const { createClient } = require("./client");

let client = null;

function getClient() {
  if (!client) {
    const { wxTransport, wxStorage } = require("./wx-transport");
    client = createClient({ config, transport: wxTransport(), storage: wxStorage() });
  }
  return client;
}

function setClient(next) {
  client = next;
}

module.exports = { getClient, setClient };
