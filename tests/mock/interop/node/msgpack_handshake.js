// The official JavaScript client with its MessagePack hub protocol against a Voxta server,
// which (like Voxta, whose hub registers JSON only) must refuse the handshake by name.
//
//   node msgpack_handshake.js <base url> <negotiate|skip>
//
// Prints one JSON line {mode, started, error} and exits 0 when start() failed as it should.

"use strict";

const signalR = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");

const [baseUrl, mode] = process.argv.slice(2);
const options = mode === "skip"
  ? { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets }
  : {};
const connection = new signalR.HubConnectionBuilder()
  .withUrl(`${baseUrl}/hub`, options)
  .withHubProtocol(new MessagePackHubProtocol())
  .configureLogging(signalR.LogLevel.None)
  .build();

const watchdog = setTimeout(() => {
  process.stdout.write(JSON.stringify({ mode, started: false, error: "timed out" }) + "\n");
  process.exit(2);
}, 30000);

connection.start().then(
  async () => {
    clearTimeout(watchdog);
    process.stdout.write(JSON.stringify({ mode, started: true, error: null }) + "\n");
    await connection.stop();
    process.exit(1);
  },
  (err) => {
    clearTimeout(watchdog);
    process.stdout.write(JSON.stringify({ mode, started: false, error: String(err) }) + "\n");
    process.exit(0);
  },
);
